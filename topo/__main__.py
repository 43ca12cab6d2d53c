"""``python -m topo`` runs the same command line as the ``topo`` script."""

from topo.cli.main import main

if __name__ == "__main__":
    main()
