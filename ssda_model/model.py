"""The user-facing model: fit on two AnnData objects, save to / load from a directory, predict cells."""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import anndata as ad
import numpy as np
import pandas as pd
import torch

from ssda_model.config import SSDAConfig
from ssda_model.data.genes import GeneScaler, collapse_duplicate_genes
from ssda_model.data.prepare import prepare_domains
from ssda_model.data.readers import expression_matrix
from ssda_model.errors import SSDAInputError
from ssda_model.memory import check_fits_memory
from ssda_model.module.networks import SSDANet
from ssda_model.outputs import MARKER, check_output, replace_folder
from ssda_model.threads import share_cores
from ssda_model.train.blend import member_networks, state_shapes
from ssda_model.train.device import resolve_device
from ssda_model.train.protocol import FitMetrics, run_protocol

MODEL_FORMAT = "ssda4drug-model"
FORMAT_VERSION = 1


@dataclass
class SSDAModel:
    """A fitted SSDA4Drug model: one network per repetition, the genes it reads and their scalers.

    New cells are z-scored with the target-domain scaler learned at fit time, so a cell's score
    does not depend on which other cells share its file.
    """

    config: SSDAConfig
    genes: list[str]
    source_scaler: GeneScaler
    target_scaler: GeneScaler
    state_dicts: list[dict[str, torch.Tensor]]
    metrics: FitMetrics
    histories: list[list[dict[str, float]]]
    label_key: str = "response"
    _networks: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    seconds: dict[str, float] = field(default_factory=dict, repr=False, compare=False)  # of the fit's phases

    @classmethod
    def fit(
        cls,
        source: ad.AnnData,
        target: ad.AnnData,
        config: SSDAConfig | None = None,
        *,
        label_key: str = "response",
        source_name: str = "source",
        target_name: str = "target",
        n_top_genes: int | None = None,
        gene_list: str | Path | None = None,
        on_epoch: Callable[[int, dict[str, float]], None] | None = None,
        progress: bool = False,
    ) -> SSDAModel:
        """Run the evaluation protocol and keep every repetition's best model.

        Parameters
        ----------
        source
            Bulk cell lines × genes: ``X`` log expression, ``obs[label_key]`` 1 (sensitive) / 0.
        target
            Cells × genes: ``X`` log1p-normalised, ``obs[label_key]`` 1 / 0 / missing; the labels
            of cells other than the shots are read only to evaluate.
        config
            Hyper-parameters (`SSDAConfig`; its defaults are the reference code's).
        label_key
            The ``obs`` column holding the labels on both sides.
        source_name, target_name
            How errors and the metrics name the inputs.
        n_top_genes, gene_list
            Restrict the shared genes to the target's highly variable genes or to a file's list.
        on_epoch
            Called as ``on_epoch(repetition, record)`` after every epoch of every repetition, with
            the epoch's losses and selection AUC (how the platform logs metrics live).
        progress
            A tqdm bar over epochs on stderr.

        Returns
        -------
        The fitted model; ``metrics`` holds per-repetition and mean AUC / AUPR, ``histories`` the
        per-epoch records, ``seconds`` the wall time of preparing, training and scoring (not saved).
        Bad input, and repetitions that cannot fit in memory, raise
        `SSDAInputError` before training.
        """
        config = config or SSDAConfig()
        start = time.perf_counter()
        domains = prepare_domains(
            source,
            target,
            label_key=label_key,
            shots=config.shots,
            val_fraction=config.val_fraction,
            scaling=config.scaling,
            source_name=source_name,
            target_name=target_name,
            n_top_genes=n_top_genes,
            gene_list=gene_list,
        )
        check_fits_memory(len(domains.genes), len(domains.source_y) + len(domains.target_y), config)
        prepared = time.perf_counter() - start
        result = run_protocol(domains, config, on_epoch=on_epoch, progress=progress)
        return cls(
            config=config,
            genes=domains.genes,
            source_scaler=domains.source_scaler,
            target_scaler=domains.target_scaler,
            state_dicts=result.state_dicts,
            metrics=result.metrics,
            histories=result.histories,
            label_key=label_key,
            seconds={"prepare": prepared, **result.seconds},
        )

    # ---- inference -------------------------------------------------------------------------
    def networks(self, device: str = "auto") -> list[SSDANet]:
        """Every fitted network in eval mode on `device` (built once per device): one per
        repetition, or for the blend its members', repetition by repetition."""
        target = resolve_device(device)
        if target not in self._networks:
            self._networks[target] = [
                net
                for state in self.state_dicts
                for net in member_networks(len(self.genes), self.config, state, target)
            ]
        return self._networks[target]

    def missing_genes(self, var_names: list[str], name: str = "input") -> list[str]:
        """The model's genes absent from `var_names`; more than half absent is an error."""
        present = set(var_names)
        missing = [g for g in self.genes if g not in present]
        if len(missing) > len(self.genes) / 2:
            raise SSDAInputError(
                name,
                f"shares only {len(self.genes) - len(missing)} of the model's "
                f"{len(self.genes)} genes by var_names; at least half are needed",
            )
        return missing

    def align_values(
        self, values: np.ndarray, var_names: list[str], name: str = "input"
    ) -> tuple[np.ndarray, list[str]]:
        """z-scored rows on the model's genes; absent genes are set to their training mean (z = 0)."""
        values, names = collapse_duplicate_genes(values, pd.Index(var_names))
        missing = self.missing_genes(names, name)
        position = {g: i for i, g in enumerate(names)}
        aligned = np.tile(self.target_scaler.mean, (len(values), 1))
        present = [i for i, g in enumerate(self.genes) if g in position]
        aligned[:, present] = values[:, [position[self.genes[i]] for i in present]]
        return self.target_scaler.transform(aligned), missing

    def align(self, adata: ad.AnnData, name: str = "input") -> tuple[np.ndarray, list[str]]:
        """`align_values` of a validated AnnData."""
        return self.align_values(expression_matrix(adata, name), list(map(str, adata.var_names)), name)

    @torch.no_grad()
    def score(self, x: np.ndarray, device: str = "auto") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean P(sensitive), its std over repetitions, mean 32-d features) of z-scored rows; a
        repetition of the blend scores the mean of its members."""
        nets = self.networks(device)
        tensor = torch.as_tensor(x, dtype=torch.float32, device=next(nets[0].parameters()).device)
        probs, feats = [], []
        with share_cores():
            for net in nets:
                features = net.features(tensor)
                probs.append(torch.softmax(net.classifier(features), dim=1)[:, 1].cpu().numpy())
                feats.append(features.cpu().numpy())
        members = len(nets) // len(self.state_dicts)
        per_repetition = np.reshape(probs, (len(self.state_dicts), members, len(x))).mean(axis=1)
        return per_repetition.mean(axis=0), per_repetition.std(axis=0), np.mean(feats, axis=0)

    def predict(
        self, adata: ad.AnnData, *, name: str = "input", model_path: str | None = None, device: str = "auto"
    ) -> ad.AnnData:
        """Score cells: P(sensitive) by the mean of the repetitions' models.

        Parameters
        ----------
        adata
            Cells × genes, log1p-normalised as the target was at fit time. Genes are matched by
            name; the model's genes absent here count as 0 after scaling (more than half absent is
            an error).
        name
            How errors and warnings name the input (a file path, usually).
        model_path
            Recorded in ``uns["ssda"]["model"]``.
        device
            ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

        Returns
        -------
        A copy of ``adata`` with these fields set:

        ``obs["ssda_score"]``
            P(sensitive), float32 in [0, 1].
        ``obs["ssda_score_std"]``
            Its standard deviation over the repetitions' models.
        ``obs["ssda_label"]``
            ``"sensitive"`` where the score ≥ 0.5, else ``"resistant"``.
        ``obsm["X_ssda"]``
            The predictor features (mean over the models), for UMAPs and clustering.
        ``uns["ssda"]``
            ``model``, ``method``, ``genes_used``, ``genes_missing``, ``n_models``.
        """
        x, missing = self.align(adata, name)
        mean, std, features = self.score(x, device)
        out = adata.copy()
        out.obs["ssda_score"] = mean.astype(np.float32)
        out.obs["ssda_score_std"] = std.astype(np.float32)
        out.obs["ssda_label"] = np.where(mean >= 0.5, "sensitive", "resistant")
        out.obsm["X_ssda"] = features.astype(np.float32)
        out.uns["ssda"] = {
            "model": model_path or "",
            "method": self.config.method,
            "genes_used": [g for g in self.genes if g not in set(missing)],
            "genes_missing": missing,
            "n_models": len(self.state_dicts),
        }
        return out

    # ---- persistence -----------------------------------------------------------------------
    @staticmethod
    def check_out(path: str | Path) -> None:
        """Refuse, before training, a model folder that `save` would not write; a model folder saved
        before output markers existed is recognised by its model.json and kept replaceable."""
        path = Path(path)
        try:
            legacy = json.loads((path / "model.json").read_text()).get("format") == MODEL_FORMAT
        except (OSError, ValueError, AttributeError):
            legacy = False
        if legacy and not (path / MARKER).exists():
            (path / MARKER).write_text("an ssda model folder\n")
        check_output(path, folder=True)

    def save(self, path: str | Path) -> Path:
        """Write the model directory atomically: a temporary sibling folder renamed into place.

        Parameters
        ----------
        path
            A new or empty folder, or one an earlier ``save`` wrote (it is replaced whole); a
            folder holding anything else is refused with `SSDAInputError`.

        Returns
        -------
        ``path``, holding ``model.json``, ``config.json``, ``genes.txt``, ``scaler.pt``,
        ``weights/repetition_NN.pt``, ``metrics.json`` and ``history.json``.
        """
        self.check_out(path)
        return replace_folder(path, self._write)

    def _write(self, folder: Path) -> None:
        folder.mkdir()
        (folder / "weights").mkdir()
        for i, state in enumerate(self.state_dicts, start=1):
            torch.save(state, folder / "weights" / f"repetition_{i:02d}.pt")
        torch.save(
            {
                "source_mean": torch.from_numpy(self.source_scaler.mean),
                "source_std": torch.from_numpy(self.source_scaler.std),
                "target_mean": torch.from_numpy(self.target_scaler.mean),
                "target_std": torch.from_numpy(self.target_scaler.std),
            },
            folder / "scaler.pt",
        )
        (folder / "genes.txt").write_text("\n".join(self.genes) + "\n")
        (folder / "config.json").write_text(self.config.to_json())
        (folder / "metrics.json").write_text(json.dumps(self.metrics, indent=2))
        (folder / "history.json").write_text(json.dumps(self.histories))
        (folder / "model.json").write_text(
            json.dumps(
                {
                    "format": MODEL_FORMAT,
                    "version": FORMAT_VERSION,
                    "label_key": self.label_key,
                    "n_models": len(self.state_dicts),
                    "n_genes": len(self.genes),
                },
                indent=2,
            )
        )

    @classmethod
    def load(cls, path: str | Path) -> SSDAModel:
        """Read a model directory written by `save`, on any machine; tensors load with weights_only.

        Parameters
        ----------
        path
            The model folder.

        Returns
        -------
        The model, ready to `predict`. A damaged folder (a file missing, truncated or not ours,
        genes that do not match the weights) is an `SSDAInputError` naming the file and the
        problem, never a traceback.
        """
        folder = Path(path)
        if not (folder / "model.json").exists():
            raise SSDAInputError(str(folder), "not an ssda model directory (model.json missing)")
        manifest = _read_json(folder, "model.json", dict)
        if manifest.get("format") != MODEL_FORMAT:
            raise SSDAInputError(
                str(folder / "model.json"), f"format is {manifest.get('format')!r}, expected {MODEL_FORMAT!r}"
            )
        n_models = manifest.get("n_models")
        if not isinstance(n_models, int) or n_models < 1:
            raise _damaged(folder, "model.json", f"'n_models' must be a positive integer, got {n_models!r}")
        settings = _read_json(folder, "config.json", dict)
        try:
            config = SSDAConfig.from_dict(settings)
        except (TypeError, ValueError) as exc:
            raise _damaged(folder, "config.json", f"not a valid model configuration ({exc})") from None
        genes = _read_file(folder, "genes.txt", Path.read_text).splitlines()
        shapes = _weight_shapes(folder, genes, manifest, config)
        scaler = _read_tensors(folder, "scaler.pt", {k: (len(genes),) for k in _SCALER_KEYS}, len(genes))
        states = [
            _read_tensors(folder, f"weights/repetition_{i:02d}.pt", shapes, len(genes))
            for i in range(1, n_models + 1)
        ]
        return cls(
            config=config,
            genes=genes,
            source_scaler=GeneScaler(scaler["source_mean"].numpy(), scaler["source_std"].numpy()),
            target_scaler=GeneScaler(scaler["target_mean"].numpy(), scaler["target_std"].numpy()),
            state_dicts=states,
            metrics=cast(FitMetrics, _read_json(folder, "metrics.json", dict)),
            histories=_read_json(folder, "history.json", list),
            label_key=str(manifest.get("label_key", "response")),
        )


_SCALER_KEYS = ("source_mean", "source_std", "target_mean", "target_std")


def _damaged(folder: Path, name: str, problem: str) -> SSDAInputError:
    return SSDAInputError(
        str(folder / name),
        f"{problem}; the model folder {folder} is damaged: fit it again or restore it from a copy",
    )


def _read_file(folder: Path, name: str, read: Callable[[Path], object]):
    try:
        return read(folder / name)
    except FileNotFoundError:
        raise _damaged(folder, name, "file missing") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _damaged(
            folder, name, f"unreadable ({getattr(exc, 'strerror', None) or type(exc).__name__})"
        ) from None


def _read_json(folder: Path, name: str, kind: type):
    try:
        value = json.loads(_read_file(folder, name, Path.read_text))
    except ValueError:
        raise _damaged(folder, name, "not valid JSON (truncated?)") from None
    if not isinstance(value, kind):
        raise _damaged(folder, name, f"expected a JSON {'object' if kind is dict else 'list'}")
    return value


def _weight_shapes(folder: Path, genes: list[str], manifest: dict, config: SSDAConfig) -> dict[str, tuple]:
    """The weight shapes genes.txt and config.json imply (networks built on the meta device, no memory)."""
    if not genes or manifest.get("n_genes", len(genes)) != len(genes):
        raise _damaged(
            folder, "genes.txt", f"lists {len(genes)} genes but model.json says {manifest.get('n_genes')}"
        )
    return state_shapes(len(genes), config)


def _read_tensors(folder: Path, name: str, shapes: dict[str, tuple], n_genes: int) -> dict[str, torch.Tensor]:
    """A tensors-only file checked against `shapes`; any other pickle is refused, never unpickled."""
    try:
        data = _read_file(folder, name, lambda p: torch.load(p, map_location="cpu", weights_only=True))
    except pickle.UnpicklingError as exc:
        refused = str(exc).startswith("Weights only load failed")
        raise _damaged(
            folder,
            name,
            "holds Python objects other than tensors, which ssda never loads (it reads "
            "only the tensor files `ssda fit` writes)"
            if refused
            else "not a PyTorch tensor file",
        ) from None
    except SSDAInputError:
        raise
    except (
        Exception
    ):  # torch's parser fails on damaged bytes in many ways (EOFError, RuntimeError, IndexError…)
        raise _damaged(folder, name, "truncated or not a PyTorch tensor file") from None
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise _damaged(folder, name, "expected a dictionary of named tensors")
    if set(data) != set(shapes):
        missing, extra = sorted(set(shapes) - set(data)), sorted(set(data) - set(shapes))
        raise _damaged(
            folder,
            name,
            f"its tensors do not match the model (missing: {', '.join(missing) or 'none'}; "
            f"unexpected: {', '.join(extra) or 'none'})",
        )
    for key, shape in shapes.items():
        if tuple(data[key].shape) != shape:
            raise _damaged(
                folder,
                name,
                f"tensor {key} has shape {tuple(data[key].shape)}, but genes.txt "
                f"({n_genes} genes) and config.json imply {shape}",
            )
    return data
