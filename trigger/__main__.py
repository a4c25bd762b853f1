from trigger.cli import main

raise SystemExit(main())
