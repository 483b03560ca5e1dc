from bocage.cli import main

raise SystemExit(main())
