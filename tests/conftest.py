"""Suite-wide: local job runs keep their vault keys in a temporary folder, not ~/.config."""

import os
import tempfile

os.environ.setdefault("MESHMPC_VAULT_DIR", tempfile.mkdtemp(prefix="meshmpc-test-vault-"))
