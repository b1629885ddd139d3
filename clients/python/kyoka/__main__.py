import sys

from kyoka.cli import main

sys.exit(main())
