"""What a user can cause and mend: the errors `tinyface` prints as `tinyface: error: ...` (exit status 2, no
traceback unless --debug). OSError covers a missing file, an existing folder, a full disk, no permission ..."""

from tinyface.data import DownloadError, LFWFormatError, MatFileError

USER_ERRORS = (ValueError, OSError, DownloadError, MatFileError, LFWFormatError)
