import sys

from forecaster.cli import main

sys.exit(main())
