from rapidrelease.cli import main

raise SystemExit(main())
