from boxnet_tui.cli import main

raise SystemExit(main())
