from pipeline.entry.cli import main

raise SystemExit(main())
