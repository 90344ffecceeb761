import sys

from sdtui.cli import main

sys.exit(main())
