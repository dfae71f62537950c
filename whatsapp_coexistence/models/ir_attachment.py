import hashlib
import logging
import os
import tempfile

from odoo import api, models

_logger = logging.getLogger(__name__)


class _Sha1Sink:
    """Writes to a file and hashes as it goes: ``ir.attachment``'s checksum is the SHA-1 of
    the content, and the content is never whole in memory."""

    def __init__(self, handle):
        self.handle = handle
        self.digest = hashlib.sha1()
        self.size = 0

    def write(self, chunk):  # pylint: disable=method-required-super
        self.digest.update(chunk)
        self.size += len(chunk)
        self.handle.write(chunk)


class IrAttachment(models.Model):
    _inherit = "ir.attachment"

    @api.model
    def _wac_create_streamed(self, vals, fill):
        """Create a binary attachment whose content ``fill(sink)`` writes chunk by chunk.

        ``create()`` only takes the content as bytes (``raw``/``datas``) and computes
        ``store_fname``, ``checksum`` and ``file_size`` from them. Here the content goes to a
        temporary file in the filestore, hashed on the way, and is then moved to the very
        path ``_file_write`` would use (``<sha1[:2]>/<sha1>``), registered for the filestore
        garbage collection like ``_file_write`` does, so a rolled back transaction leaves no
        file behind. With database storage (``ir_attachment.location = db``) the bytes must
        sit in a column: the file is read back whole, the only case that holds it in memory.

        :param dict vals: ``create()`` values without content (name, res_model, res_id,
            mimetype, company_id...)
        :param fill: callable taking a sink with ``write(bytes)``; its result is returned
        :returns: ``(attachment, fill's result)``; nothing is created when ``fill`` raises
        """
        filestore = self._filestore()
        os.makedirs(filestore, exist_ok=True)
        fd, temp_path = tempfile.mkstemp(prefix="wac-media-", dir=filestore)
        try:
            with os.fdopen(fd, "wb") as handle:
                sink = _Sha1Sink(handle)
                result = fill(sink)
            checksum = sink.digest.hexdigest()
            if self._storage() == "db":
                with open(temp_path, "rb") as stored:
                    return self.create(dict(vals, raw=stored.read())), result
            fname = self._wac_move_into_filestore(temp_path, checksum)
        finally:
            if os.path.exists(temp_path):
                os.unlink(temp_path)
        attachment = self.create(dict(vals, type="binary"))
        # The stored-content columns, as _get_datas_related_values would set them (create()
        # drops them from vals). No index_content: media are not searched by their text.
        self.env.cr.execute(
            "UPDATE ir_attachment SET store_fname = %s, checksum = %s, file_size = %s, "
            "db_datas = NULL WHERE id = %s",
            (fname, checksum, sink.size, attachment.id))
        attachment.invalidate_recordset(["store_fname", "checksum", "file_size", "db_datas",
                                         "raw", "datas"])
        return attachment, result

    @api.model
    def _wac_move_into_filestore(self, temp_path, checksum):
        """Put ``temp_path`` where ``_file_write`` stores the content of ``checksum``."""
        fname = checksum[:2] + "/" + checksum
        full_path = self._full_path(fname)
        os.makedirs(os.path.dirname(full_path), exist_ok=True)
        if os.path.exists(full_path):
            # Same SHA-1: the same file is stored already (another attachment holds it).
            return fname
        os.replace(temp_path, full_path)
        self._mark_for_gc(fname)
        return fname
