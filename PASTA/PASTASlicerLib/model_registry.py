"""Models PASTA can run: the registry shipped with the module and the user's model cache.

* The **registry** (``Resources/Models.json``) describes known models: where to get them, their
  SHA256, licence and whether they find lesions on their own.
* The **cache** lives in ``$PASTA_HOME/models`` (default ``~/.pasta/models``), never in the
  extension folder (lost on update, maybe read-only). Each installed model is one folder with a
  manifest (``pasta-install.json``) holding the SHA256 of every file, so a model can be verified
  at any time and copied to another machine.
* **Import** from a checkpoint file, a model folder (PASTA model card or nnU-Net v2 results folder)
  or a zip of one. Zip members that would land outside the target folder are refused.
* **Download** happens only with the caller's explicit consent and only for registry entries
  with a SHA256; the file is hashed while streaming to ``*.partial`` and renamed when it matches.
* **Bundled** registry entries (``"download": "bundled"``) name a model that ships inside the
  package (``PASTALib.model.bundled_models``). The cache lists them first, verifies them against their
  model card's SHA256 like any model, and never deletes them: they belong to the install. A missing
  or damaged bundled folder is reported with its reason instead of failing the whole list.

Standard library only: nothing here imports torch (the analysis process checks the weights).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Callable, Optional

from PASTALib.errors import PastaInputError
from PASTALib.hashing import sha256_file
from PASTALib.home import pasta_home
from PASTALib.model import card as model_card
from PASTALib.model.bare_weights import bare_weights_error, fold_of_results_folder

MANIFEST = "pasta-install.json"
REGISTRY_SCHEMA = "pasta-models"
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".safetensors")
FORMATS = ("pasta-model", "nnunet", "checkpoint")
DOWNLOADS = ("auto", "manual", "bundled")
BUNDLED_SOURCE = "bundled with PASTA"
#: What to do about a missing or damaged bundled model: it cannot be re-imported or deleted.
BUNDLED_HINT = "Reinstall the PASTA extension, or import another model."


class ConsentRequired(PermissionError):
    """Raised when a download is attempted without the user's consent."""


# ----------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class RegistryEntry:
    id: str
    title: str
    version: str
    format: str  #: one of :data:`FORMATS`
    description: str
    license: str
    #: "auto": downloadable after consent (needs url and sha256); "manual": the user downloads
    #: from ``page`` and imports the file; "bundled": ships in the package (see ``bundled``)
    download: str
    url: Optional[str] = None
    page: Optional[str] = None
    sha256: Optional[str] = None
    size_bytes: Optional[int] = None
    #: lesion type keys the model finds; empty for the foundation model (fine-tune it first)
    lesion_types: tuple = ()
    deprecated: bool = False
    #: for "bundled" entries: the name in ``PASTALib.model.bundled_models.BUNDLED`` (as ``--model`` takes it)
    bundled: Optional[str] = None

    @property
    def finds_lesions(self) -> bool:
        return bool(self.lesion_types)


@dataclass(frozen=True)
class BundledStatus:
    """A bundled registry entry on this install: its model when usable, else why not."""

    entry: RegistryEntry
    folder: Optional[Path]
    model: Optional[InstalledModel] = None
    problem: Optional[str] = None


def default_registry_path() -> Path:
    return Path(__file__).resolve().parents[1] / "Resources" / "Models.json"


def load_registry(path: Optional[str | Path] = None) -> list[RegistryEntry]:
    """The registry's entries, checked: unique ids, known formats, a SHA256 for every download."""
    path = Path(path) if path else default_registry_path()
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("schema") != REGISTRY_SCHEMA:
        raise ValueError(f"{path} is not a PASTA model registry (schema={data.get('schema')!r})")
    entries, seen = [], set()
    for raw in data.get("models", []):
        raw = dict(raw)
        raw["lesion_types"] = tuple(raw.get("lesion_types", ()))
        entry = RegistryEntry(**raw)
        if entry.id in seen or not _valid_id(entry.id):
            raise ValueError(f"{path}: model id {entry.id!r} is repeated or not a valid folder name")
        if entry.format not in FORMATS or entry.download not in DOWNLOADS:
            raise ValueError(f"{path}: model {entry.id!r} has format {entry.format!r} / download {entry.download!r}")
        if entry.download == "auto" and not (entry.url and _is_sha256(entry.sha256)):
            raise ValueError(f"{path}: model {entry.id!r} is downloadable but lacks a url or SHA256")
        if entry.download == "bundled" and not (entry.bundled and entry.format == "pasta-model"):
            raise ValueError(f"{path}: bundled model {entry.id!r} needs a 'bundled' name and format 'pasta-model'")
        seen.add(entry.id)
        entries.append(entry)
    return entries


def default_model_id(registry: Optional[str | Path] = None) -> Optional[str]:
    """The registry id of the model that ``--model default`` names (the module's initial choice)."""
    return next((e.id for e in load_registry(registry) if e.download == "bundled" and e.bundled == "default"), None)


# ----------------------------------------------------------------------------------- cache


@dataclass
class InstalledModel:
    id: str
    path: Path  #: what ``pasta analyze --model`` takes (the folder, or the checkpoint file in it)
    format: str
    files: dict  #: relative path -> SHA256
    source: str
    installed: str
    registry_id: Optional[str] = None
    bundled: bool = False  #: ships with PASTA: verified like the others, never deleted
    #: a bare weights file the user chose, at import, to run with PASTA's pretraining preprocessing
    pasta_defaults: bool = False

    @property
    def sha256(self) -> str:
        """One digest for the whole model: SHA256 of the sorted "path  digest" lines (a file's own
        digest when the model is a single file)."""
        if len(self.files) == 1:
            return next(iter(self.files.values()))
        listing = "".join(f"{name}  {digest}\n" for name, digest in sorted(self.files.items()))
        return hashlib.sha256(listing.encode()).hexdigest()


#: How a Slicer user opts in to PASTA's pretraining preprocessing for a bare weights file.
GUI_OPT_IN = "import it again and answer Yes when asked about PASTA's pretraining preprocessing"


class ModelCache:
    """The installed models: the registry's bundled ones, then those under ``<home>/models``."""

    def __init__(self, home: Optional[str | Path] = None, registry: Optional[str | Path] = None) -> None:
        self.home = Path(home) if home else pasta_home()
        self.root = self.home / "models"
        self.registry = registry

    # -------------------------------------------------------------- bundled
    def bundled(self) -> list[BundledStatus]:
        """Every bundled registry entry with its model, or the reason it cannot be used."""
        return [bundled_status(entry) for entry in load_registry(self.registry)
                if entry.download == "bundled" and not entry.deprecated]

    def _bundled_entry(self, model_id: str) -> Optional[RegistryEntry]:
        return next((s.entry for s in self.bundled() if s.entry.id == model_id), None)

    # -------------------------------------------------------------- listing
    def installed(self) -> list[InstalledModel]:
        """Usable bundled models first, then the cache's (a cache folder cannot shadow a bundled id)."""
        statuses = self.bundled()
        models = [s.model for s in statuses if s.model is not None]
        reserved = {s.entry.id for s in statuses}
        if self.root.is_dir():
            for folder in sorted(self.root.iterdir()):
                if folder.is_dir() and (folder / MANIFEST).is_file() and folder.name not in reserved:
                    models.append(self._read_manifest(folder))
        return models

    def get(self, model_id: str) -> InstalledModel:
        entry = self._bundled_entry(model_id)
        if entry is not None:
            status = bundled_status(entry)
            if status.model is None:
                raise PastaInputError(status.problem or f"{entry.title} is not available.", BUNDLED_HINT)
            return status.model
        folder = self.root / model_id
        if not _valid_id(model_id) or not (folder / MANIFEST).is_file():
            raise PastaInputError(f"Model {model_id!r} is not installed in {self.root}.",
                                  "Import it (file, folder or zip) or download it from the model list.")
        return self._read_manifest(folder)

    def _read_manifest(self, folder: Path) -> InstalledModel:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        data["path"] = folder / data.pop("relative_path")
        return InstalledModel(**data)

    # -------------------------------------------------------------- verify / delete
    def verify(self, model_id: str) -> InstalledModel:
        """Re-hash every file; raises PastaInputError naming the first file that changed."""
        model = self.get(model_id)
        if model.bundled:
            model_card.verify(model.path, _bundled_what(model_id), BUNDLED_HINT)
            return model
        folder = self.root / model_id
        for name, expected in sorted(model.files.items()):
            file = folder / name
            if not file.is_file():
                raise PastaInputError(f"Model {model_id!r} is incomplete: {name} is missing.",
                                      "Delete the model and import it again.")
            if sha256_file(file) != expected:
                raise PastaInputError(f"Model {model_id!r} is corrupt: {name} does not match its SHA256.",
                                      "Delete the model and import it again.")
        return model

    def delete(self, model_id: str) -> None:
        """Remove one installed model (only folders inside the cache, never anything else)."""
        if self._bundled_entry(model_id) is not None:
            raise PastaInputError(f"Model {model_id!r} ships with PASTA and cannot be deleted.",
                                  "It is part of the install; choose another model instead.")
        folder = (self.root / model_id)
        if not _valid_id(model_id) or not (folder / MANIFEST).is_file():
            raise PastaInputError(f"Model {model_id!r} is not installed in {self.root}.")
        if folder.resolve().parent != self.root.resolve():
            raise PastaInputError(f"Refusing to delete {folder}: it is not inside {self.root}.")
        shutil.rmtree(folder)

    # -------------------------------------------------------------- import
    def import_model(self, source: str | Path, model_id: Optional[str] = None, overwrite: bool = False,
                     expected_sha256: Optional[str] = None, registry_id: Optional[str] = None,
                     pasta_defaults: bool = False) -> InstalledModel:
        """Install a checkpoint file, a model folder or a zip of one into the cache.

        ``expected_sha256`` checks a downloaded file or zip before anything is unpacked. A bare weights
        file (no plans.json, no model card) is refused unless ``pasta_defaults``: the user's choice to
        run it with PASTA's pretraining preprocessing, kept with the model.
        """
        source = Path(source).expanduser()
        if not source.exists():
            raise PastaInputError(f"{source} does not exist.", "Choose a model file, folder or zip.")
        if expected_sha256:
            if not source.is_file():
                raise PastaInputError(f"A SHA256 can only be checked for a file, not {source}.")
            digest = sha256_file(source)
            if digest != expected_sha256.lower():
                raise PastaInputError(f"{source.name} does not match its expected SHA256 "
                                      f"({digest[:12]}… instead of {expected_sha256[:12]}…).",
                                      "The file is corrupt or not the expected model; download it again.")
        fold = fold_of_results_folder(source) if source.is_file() else None
        if fold is not None:
            raise PastaInputError(f"{source.name} is fold {fold[1]} of the nnU-Net results folder {fold[0]}; its "
                                  "spacing and intensity normalisation are in that folder's plans.json.",
                                  "Import the results folder (Import folder…) rather than the lone checkpoint.")
        model_id = model_id or _id_from_name(source.name)
        if not _valid_id(model_id):
            raise PastaInputError(f"{model_id!r} is not a usable model name.",
                                  "Use letters, digits, '.', '_' and '-' only.")
        if self._bundled_entry(model_id) is not None:
            raise PastaInputError(f"{model_id!r} is the name of a model that ships with PASTA.",
                                  "Import under another name.")
        target = self.root / model_id
        if target.exists() and not overwrite:
            raise PastaInputError(f"A model named {model_id!r} is already installed.",
                                  "Delete it first, or import under another name.")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{model_id}.partial-", dir=self.root))
        try:
            if source.is_dir():
                payload = staging / "model"
                copy_regular_files(source, payload)
            elif source.suffix.lower() in CHECKPOINT_SUFFIXES:  # before the zip test: torch.save writes a zip
                payload = staging / "model"
                payload.mkdir()
                shutil.copy2(source, payload / source.name)
            elif zipfile.is_zipfile(source):
                payload = staging / "model"
                safe_extract_zip(source, payload)
            else:
                raise PastaInputError(f"{source.name} is not a model: expected a folder, a .zip or a "
                                      f"checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}).")
            _, fmt, entry = detect_model(payload)
            if fmt == "checkpoint" and not pasta_defaults:
                raise bare_weights_error(Path(source), GUI_OPT_IN)
            files = {p.relative_to(payload).as_posix(): sha256_file(p)
                     for p in sorted(payload.rglob("*")) if p.is_file()}
            relative = (entry.relative_to(payload) if entry != payload else Path("."))
            record = {"id": model_id, "relative_path": relative.as_posix(), "format": fmt, "files": files,
                      "source": str(source), "installed": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      "registry_id": registry_id, "pasta_defaults": bool(pasta_defaults and fmt == "checkpoint")}
            (payload / MANIFEST).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            if target.exists():
                shutil.rmtree(target)
            os.replace(payload, target)  # atomic: a half-copied model never appears in the cache
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.get(model_id)

    # -------------------------------------------------------------- download
    def download(self, entry: RegistryEntry, consent: bool,
                 progress: Optional[Callable[[int, Optional[int]], None]] = None,
                 overwrite: bool = False) -> InstalledModel:
        """Fetch a registry model (only with ``consent``), check its SHA256, and install it."""
        if entry.download == "bundled":
            raise PastaInputError(f"{entry.title} ships with PASTA; there is nothing to download.")
        if not consent:
            raise ConsentRequired(f"Downloading {entry.title} needs your consent.")
        if entry.download != "auto" or not entry.url or not _is_sha256(entry.sha256):
            raise PastaInputError(f"{entry.title} cannot be downloaded automatically.",
                                  f"Download it from {entry.page or entry.url} and import the file.")
        import urllib.request

        self.root.mkdir(parents=True, exist_ok=True)
        name = PurePosixPath(entry.url.split("?", 1)[0]).name or f"{entry.id}.zip"
        partial = self.root / f".{entry.id}.{name}.partial"
        digest = hashlib.sha256()
        received = 0
        try:
            with urllib.request.urlopen(entry.url, timeout=60) as response, open(partial, "wb") as out:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else entry.size_bytes
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    if progress:
                        progress(received, total)
            if digest.hexdigest() != entry.sha256.lower():
                raise PastaInputError(f"The download of {entry.title} is corrupt (SHA256 mismatch).",
                                      "Try again; if it keeps failing, download it by hand and import it.")
            final = partial.with_name(name)
            os.replace(partial, final)
            try:
                return self.import_model(final, entry.id, overwrite=overwrite, registry_id=entry.id)
            finally:
                final.unlink(missing_ok=True)
        finally:
            partial.unlink(missing_ok=True)


def copy_regular_files(source: Path, target: Path) -> None:
    """Copy a model folder file by file; a symbolic link is refused, never followed (a link in a
    downloaded folder could pull any file of this computer into the model cache)."""
    paths = sorted(source.rglob("*"))
    for path in paths:
        if path.is_symlink():
            raise PastaInputError(f"{path} is a symbolic link (to {os.readlink(path)}); model folders are "
                                  "imported from regular files only.",
                                  "Copy the real file into the folder in place of the link, then import again.")
    target.mkdir(parents=True)
    for path in paths:
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(exist_ok=True)
        elif path.is_file():
            shutil.copy2(path, destination)


def bundled_status(entry: RegistryEntry) -> BundledStatus:
    """Whether a bundled entry's folder is there with its card and every file the card lists.

    Only presence is checked here (the list is refreshed often); :meth:`ModelCache.verify` hashes.
    """
    from PASTALib.model import bundled_models

    folder = bundled_models.BUNDLED.get(entry.bundled or "")
    if folder is None:
        return BundledStatus(entry, None, problem=f"This PASTA install has no bundled model named {entry.bundled!r}.")
    folder = Path(folder)
    try:
        files = model_card.check_present(folder, _bundled_what(entry.id), BUNDLED_HINT)
    except PastaInputError as error:
        return BundledStatus(entry, folder, problem=error.problem)
    model = InstalledModel(id=entry.id, path=folder, format="pasta-model", files=files, source=BUNDLED_SOURCE,
                           installed=BUNDLED_SOURCE, registry_id=entry.id, bundled=True)
    return BundledStatus(entry, folder, model=model)


def _bundled_what(model_id: str) -> str:
    return f"The bundled model {model_id!r}"


# ----------------------------------------------------------------------------------- formats
def detect_model(folder: Path) -> tuple[Path, str, Path]:
    """(model folder, format, what to pass to ``--model``) of an unpacked model.

    Accepts the model at the top or inside one wrapping folder (as zips often are).
    """
    candidates = [folder] + [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    for candidate in candidates:
        if (candidate / model_card.CARD).is_file():
            # every listed file hashed, inside the folder, present and unmodified
            model_card.verify(candidate, f"The model folder {candidate.name}", "The model folder is corrupt; get it again.")
            return candidate, "pasta-model", candidate
        if (candidate / "dataset.json").is_file() and (candidate / "plans.json").is_file():
            if not list(candidate.glob("fold_*/checkpoint_*.pth")):
                raise PastaInputError(f"{candidate.name} has plans.json and dataset.json but no "
                                      "fold_*/checkpoint_*.pth.", "Include the fold folders with their checkpoints.")
            return candidate, "nnunet", candidate
    checkpoints = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in CHECKPOINT_SUFFIXES]
    if len(checkpoints) == 1:
        return checkpoints[0].parent, "checkpoint", checkpoints[0]
    raise PastaInputError("No model found: expected a PASTA model folder (model.json), an nnU-Net v2 results "
                          "folder (plans.json, dataset.json, fold_*/checkpoint_final.pth) or one checkpoint file.")


def safe_extract_zip(archive: Path, target: Path, max_bytes: int = 64 << 30) -> None:
    """Unpack ``archive`` into ``target``, refusing members that escape it (zip slip) or are links."""
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        if sum(m.file_size for m in members) > max_bytes:
            raise PastaInputError(f"{archive.name} unpacks to more than {max_bytes >> 30} GB.")
        for member in members:
            name = member.filename.replace("\\", "/")
            parts = PurePosixPath(name).parts
            if (name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts
                    or stat.S_ISLNK(member.external_attr >> 16)):
                raise PastaInputError(f"{archive.name} contains an unsafe entry {member.filename!r} "
                                      "(an absolute path, '..' or a link).", "Only import zips you trust.")
            destination = (root / name).resolve()
            if destination != root and root not in destination.parents:
                raise PastaInputError(f"{archive.name} contains an entry that escapes its folder: {member.filename!r}.")
        for member in members:
            destination = root / member.filename.replace("\\", "/")
            if member.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(destination, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def _valid_id(model_id: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", model_id or "")) and ".." not in model_id


def _is_sha256(value: Optional[str]) -> bool:
    return bool(value) and bool(re.fullmatch(r"[0-9a-fA-F]{64}", value))


def _id_from_name(name: str) -> str:
    stem = name
    for suffix in (".zip", *CHECKPOINT_SUFFIXES):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "model"
    return cleaned[:128]


def describe(model: InstalledModel) -> dict:
    """A JSON-friendly summary for the GUI (id, format, SHA256, size, source)."""
    data = asdict(model)
    data["path"] = str(model.path)
    data["sha256"] = model.sha256
    return data
