import sys

from ssda_model.cli import main

sys.exit(main())
