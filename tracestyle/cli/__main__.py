import sys

from tracestyle.cli import main

sys.exit(main())
