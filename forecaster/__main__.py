import sys

from forecaster.jobs.cli import main

sys.exit(main())
