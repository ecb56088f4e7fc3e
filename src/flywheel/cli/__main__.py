import sys

from flywheel.cli.main import main

sys.exit(main())
