"""The heap setting every picking and training process makes (glibc only)."""

from __future__ import annotations

import platform

import pytest

from boxnet_tui import cli, heap


def test_keep_freed_memory_is_set_on_glibc_and_can_be_set_again():
    on_glibc = platform.libc_ver()[0] == "glibc"
    assert heap.keep_freed_memory() is on_glibc
    assert heap.keep_freed_memory() is on_glibc  # a second process-wide call is harmless


def test_without_a_c_library_nothing_is_set(monkeypatch):
    def no_library(name):
        raise OSError("no C library")

    monkeypatch.setattr(heap.ctypes, "CDLL", no_library)
    assert heap.keep_freed_memory() is False


def test_every_command_sets_it(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(True))
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert calls == [True]
    assert capsys.readouterr().out.strip()
