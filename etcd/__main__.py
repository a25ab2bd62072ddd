from etcd.cli import main

raise SystemExit(main())
