"""Start the importable Odoo like its odoo-bin script does.

``python3 -m odoo`` cannot be used with ``--workers``: the prefork server restarts itself with
``sys.argv[0]`` to spawn the gevent worker, which must then be a runnable script, like this one.
"""

import odoo

if __name__ == "__main__":
    odoo.cli.main()
