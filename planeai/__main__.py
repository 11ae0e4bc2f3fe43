import sys

from planeai.cli.main import main

sys.exit(main())
