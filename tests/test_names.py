"""The one rule for names that become part of a path: suffixes, model, run and file names."""

from __future__ import annotations

import pytest

from boxnet_tui.errors import UserError
from boxnet_tui.names import check_model_name, check_path_name, is_path_name

GOOD = ["BoxNet", "manual", "BoxNet2Mask_20180918", "a.b-c", "_manual", "é", "x" * 100]
BAD = [
    "x/../../../outside/evil",
    "q/../../../outside/pk",
    "/etc/passwd",
    "..",
    ".",
    "a\\b",
    "a\x00b",
    "a\nb",
    "tab\there",
    "",
    "x" * 200,
    5,
    None,
]


@pytest.mark.parametrize("name", GOOD)
def test_names_that_stay_in_their_folder_pass(name):
    assert check_path_name(name, "suffix") == name
    assert is_path_name(name)


@pytest.mark.parametrize("name", BAD)
def test_names_that_leave_their_folder_are_one_line(name):
    assert not is_path_name(name)
    with pytest.raises(UserError) as caught:
        check_path_name(name, "suffix")
    message = str(caught.value)
    assert message.startswith("suffix ") and "\n" not in message and len(message) < 160


@pytest.mark.parametrize("name", ["has space", "é", "-dash", "x" * 65, "../evil"])
def test_model_names_are_stricter(name):
    with pytest.raises(UserError, match=r"^model name "):
        check_model_name(name)


def test_a_model_name_passes_both_rules():
    assert check_model_name("BoxNet2Mask_20180918.v2") == "BoxNet2Mask_20180918.v2"
