import sys

from audiosym.cli import main

sys.exit(main())
