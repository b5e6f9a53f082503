"""The one error of notice rendering: an input a person supplied is not usable.

Every message names the file (creditor profile, applicant file, template folder or one of
its templates) and what is wrong with it, so the command line can print it as it stands.
"""

from __future__ import annotations


class NoticeError(ValueError):
    """A creditor profile, applicant file, template set or record a notice cannot use."""
