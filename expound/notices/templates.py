"""Notice templates as data: a folder a compliance team edits without touching code.

A template set is a folder::

    notice.toml          id = "...", languages = ["en", "es"]
    layout.html          shared page (Jinja2), extended by each language's notice
    notice.css           included by the layout (any other file may be referenced too)
    en/notice.html       the notice in English
    es/notice.html       the notice in Spanish
    es/reasons.toml      [reasons] CODE = "text": each reason code in Spanish

Every file (hidden ones aside) is read once, hashed and rendered from memory, so the hash
recorded with a notice covers exactly what rendered it. The hash is that of the
``sha256sum`` listing of the files, sorted by path, which anyone can recompute::

    (cd FOLDER && find . -type f -not -path '*/.*' -printf '%P\\n' | LC_ALL=C sort \\
        | xargs -d '\\n' sha256sum) | sha256sum

Templates run in Jinja2's sandbox with autoescaping on and undefined names an error: a
template sees the values it is given, and an applicant's name is text, never markup.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from expound.notices.errors import NoticeError

# The templates shipped with expound: English and Spanish, after Regulation B's model forms.
DEFAULT_TEMPLATES = Path(__file__).resolve().parent / "templates" / "default"
MANIFEST = "notice.toml"
# The language the records' reason texts are written in (the model manifests' own).
RECORD_LANGUAGE = "en"
_MAX_FILES = 200
_MAX_FILE_BYTES = 4 << 20


class TemplateManifest(BaseModel):
    """``notice.toml``: the set's id (recorded with each notice) and its languages."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
    languages: list[str] = Field(min_length=1)
    description: str = ""


class _ReasonTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    reasons: dict[str, str]


@dataclass(frozen=True)
class TemplateSet:
    """A loaded, hashed template set ready to render."""

    folder: Path
    manifest: TemplateManifest
    sha256: str
    files: dict[str, bytes]
    environment: jinja2.Environment

    def notice_template(self, language: str) -> jinja2.Template:
        """The notice template of ``language``.

        Raises:
            NoticeError: If the set has no such language.
        """
        if language not in self.manifest.languages:
            raise NoticeError(
                f"template folder {self.folder}: no language {language!r} "
                f"(it has {', '.join(self.manifest.languages)})"
            )
        return self.environment.get_template(f"{language}/notice.html")

    def reason_texts(self, language: str) -> dict[str, str]:
        """The reason texts of ``language`` by code (empty for the records' own language).

        Raises:
            NoticeError: If a language other than the records' has no reason table.
        """
        if language == RECORD_LANGUAGE:
            return {}
        name = f"{language}/reasons.toml"
        if name not in self.files:
            raise NoticeError(f"template folder {self.folder}: {name} is missing")
        return _reason_table(self.folder / name, self.files[name])


def listing_sha256(files: dict[str, bytes]) -> str:
    """The sha256 of the ``sha256sum`` listing of ``files``, sorted by path."""
    listing = "".join(
        f"{hashlib.sha256(files[name]).hexdigest()}  {name}\n"
        for name in sorted(files, key=lambda n: n.encode())
    )
    return hashlib.sha256(listing.encode()).hexdigest()


def _read_files(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        raise NoticeError(f"template folder {folder}: not a folder")
    files: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if len(files) == _MAX_FILES:
            raise NoticeError(f"template folder {folder}: more than {_MAX_FILES} files")
        try:
            if path.stat().st_size > _MAX_FILE_BYTES:
                raise NoticeError(f"template {path}: larger than {_MAX_FILE_BYTES} bytes")
            files[relative.as_posix()] = path.read_bytes()
        except OSError as error:
            raise NoticeError(f"template {path}: {error.strerror or error}") from error
    return files


def _toml(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise NoticeError(f"template {path}: not valid TOML: {error}") from error


def _reason_table(path: Path, raw: bytes) -> dict[str, str]:
    try:
        table = _ReasonTable.model_validate(_toml(path, raw))
    except ValidationError as error:
        raise NoticeError(f"template {path}: expected a [reasons] table of texts") from error
    return dict(table.reasons)


def _texts(folder: Path, files: dict[str, bytes]) -> dict[str, str]:
    texts = {}
    for name, raw in files.items():
        if name.endswith((".html", ".css", ".txt")):
            try:
                texts[name] = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise NoticeError(f"template {folder / name}: not UTF-8: {error}") from error
    return texts


def load_template_set(folder: Path) -> TemplateSet:
    """Reads, hashes and compiles the template set in ``folder``.

    Every template is compiled now, so a syntax error is reported before any record is
    read, with its file and line.

    Raises:
        NoticeError: Naming the folder or file, when the set is incomplete or a template
            does not compile.
    """
    files = _read_files(folder)
    if MANIFEST not in files:
        raise NoticeError(f"template folder {folder}: {MANIFEST} is missing")
    try:
        manifest = TemplateManifest.model_validate(_toml(folder / MANIFEST, files[MANIFEST]))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        raise NoticeError(f"template {folder / MANIFEST}: {problems}") from error
    for language in manifest.languages:
        if f"{language}/notice.html" not in files:
            raise NoticeError(f"template folder {folder}: {language}/notice.html is missing")
    texts = _texts(folder, files)
    environment = SandboxedEnvironment(
        loader=jinja2.DictLoader(texts),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    for name in texts:
        if name.endswith(".html"):
            try:
                environment.get_template(name)
            except jinja2.TemplateSyntaxError as error:
                raise NoticeError(
                    f"template {folder / name}, line {error.lineno}: {error.message}"
                ) from error
    template_set = TemplateSet(
        folder=folder,
        manifest=manifest,
        sha256=listing_sha256(files),
        files=files,
        environment=environment,
    )
    for language in manifest.languages:
        template_set.reason_texts(language)
    return template_set


def template_folder(
    option: Path | None, profile: Path, profile_templates: str, setting: Path | None
) -> Path:
    """Which template set renders a notice: the command-line option, else the creditor
    profile's ``templates`` (relative to the profile), else the setting, else the default."""
    if option is not None:
        return option
    if profile_templates:
        return profile.parent / Path(profile_templates).expanduser()
    if setting is not None:
        return setting
    return DEFAULT_TEMPLATES
