import sys

from inquest.cli import main

sys.exit(main())
