"""`pasta fit-head` and `pasta analyze --head` on features of synthetic liver tumours.

Labels depend on what a reader sees: lesion size (binary large/small, three T-like stages) and a
simulated survival that shortens with size. The tiny test model's features must carry that.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from PASTALib.model.checkpoints import load_model
from PASTALib.heads.head_file import load as load_head

from feature_cohort import TEST_CROPS, TINY, cohort_features, feature_rows, write_labels

PASTA = str(Path(sys.executable).parent / "pasta")
SCHEMA = Path(__file__).resolve().parents[1] / "PASTA" / "PASTALib" / "Resources" / "report.schema.json"


def pasta(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PASTA, *args, "--progress", "none"], capture_output=True, text=True, timeout=300)


def run_in_process(capfd, *argv: str) -> tuple[int, str]:
    from PASTALib.cli import main as cli

    capfd.readouterr()
    code = cli.main([*argv, "--progress", "none"])
    return code, capfd.readouterr().err


def _stage(voxels: int) -> str:
    return "T1" if voxels < 100 else "T2" if voxels < 400 else "T3"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    cases, csv_path = cohort_features(tmp_path_factory.getbasetemp())
    rows = feature_rows(csv_path)
    folder = tmp_path_factory.mktemp("labels")
    rng = np.random.default_rng(0)
    survival = []
    for n, row in enumerate(rows):  # bigger tumours, shorter survival; every 5th censored
        time = 60.0 * np.exp(-int(row["voxel_count"]) / 300.0) * rng.uniform(0.8, 1.25)
        survival.append([row["id"], f"{time:.2f}", 0 if n % 5 == 4 else 1])
    labels = {
        "binary": write_labels(folder / "size.csv", ["id", "label"],
                               [[r["id"], "large" if int(r["voxel_count"]) >= 250 else "small"] for r in rows]),
        "stage": write_labels(folder / "stage.csv", ["id", "label"], [[r["id"], _stage(int(r["voxel_count"]))]
                                                                      for r in rows]),
        "survival": write_labels(folder / "survival.csv", ["id", "time", "event"], survival),
    }
    return csv_path, rows, labels, folder


@pytest.fixture(scope="module")
def heads(cohort):
    csv_path, _, labels, folder = cohort
    import contextlib
    import io

    from PASTALib.cli import main as cli

    out, printed = {}, {}
    for task, path in labels.items():
        out[task] = folder / f"{task}.head.json"
        argv = ["fit-head", "--features", str(csv_path), "--labels", str(path), "--task", task, "-o", str(out[task])]
        if task == "binary":  # once as a user runs it; the others in-process (no interpreter start-up)
            result = pasta(*argv)
            assert result.returncode == 0, result.stderr
            printed[task] = result.stdout
        else:
            with contextlib.redirect_stdout(io.StringIO()) as stdout:
                assert cli.main([*argv, "--progress", "none", "--quiet"]) == 0
            printed[task] = stdout.getvalue()
    return out, printed


def test_binary_head_learns_a_visible_property_under_cross_validation(heads):
    paths, printed = heads
    head = json.loads(paths["binary"].read_text())
    assert head["format"] == "pasta-head" and head["task"] == "binary"
    assert head["features"]["dimension"] == 32 and head["training"]["size"] >= 22
    assert head["features"]["model_sha256"] == load_model(TINY).sha256["model.safetensors"]
    assert head["model"]["classes"] == ["large", "small"] and len(head["scaler"]["mean"]) == 32
    assert head["cv"]["mean"]["auc"] > 0.75 and head["cv"]["mean"]["balanced_accuracy"] > 0.7
    table = printed["binary"]
    assert "StratifiedGroupKFold" in table
    assert "| fold | n_train | n_test | accuracy | balanced_accuracy | auc |" in table
    assert sum(line.startswith("|") for line in table.splitlines()) == 2 + head["cv"]["folds"] + 2  # + mean, pooled
    folds = [set(row["test_cases"]) for row in head["cv"]["per_fold"]]  # a case's findings stay in one fold
    assert sum(map(len, folds)) == len(set().union(*folds)) == head["training"]["cases"] == 12
    assert "fold 1: case" in table


def test_cox_head_ranks_simulated_survival_by_lesion_size(heads):
    paths, printed = heads
    head = json.loads(paths["survival"].read_text())
    assert head["model"]["type"] == "cox_ph" and head["training"]["events"] >= 5
    assert head["cv"]["mean"]["c_index"] > 0.6
    assert "c_index" in printed["survival"]
    survival = head["model"]["baseline_survival"]["survival"]
    assert all(a >= b for a, b in zip(survival, survival[1:]))  # a survival curve only falls


def test_applying_a_head_needs_only_numpy_and_matches_the_libraries(cohort, heads):
    """The JSON head reproduces scikit-learn's and lifelines' predictions; no pickle, no library."""
    import pandas
    from lifelines import CoxPHFitter
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    csv_path, rows, labels, _ = cohort
    x = np.array([[float(r[f"f{c}"]) for c in range(32)] for r in rows])
    paths, _ = heads
    stage = load_head(paths["stage"])
    y = np.array([_stage(int(r["voxel_count"])) for r in rows])
    scaler = StandardScaler().fit(x)
    reference = LogisticRegression(C=1 / (0.1 * len(y)), max_iter=10000).fit(scaler.transform(x), y)
    ours = np.array([[p.probabilities[c] for c in reference.classes_] for p in stage.predict(x)])
    np.testing.assert_allclose(ours, reference.predict_proba(scaler.transform(x)), atol=1e-6)
    # far outside the training features, a prediction is flagged as an extrapolation
    assert not any(stage.extrapolates(p) for p in stage.predict(x))
    assert stage.extrapolates(stage.predict((x.mean(axis=0) + 10 * x.std(axis=0))[None])[0])

    cox = load_head(paths["survival"])
    frame = pandas.DataFrame(scaler.transform(x), columns=[f"f{c}" for c in range(32)])
    table = pandas.read_csv(labels["survival"])
    frame["time"], frame["event"] = table["time"].values, table["event"].values
    fitted = CoxPHFitter(penalizer=0.1).fit(frame, "time", "event")
    expected_curves = fitted.predict_survival_function(frame.drop(columns=["time", "event"]))
    times = expected_curves.index.values.tolist()  # the step function's own times (no interpolation)
    cox.data["model"]["report_times"] = times
    expected = expected_curves.values.T
    ours = np.array([[p.survival[f"{t:g}"] for t in times] for p in cox.predict(x)])
    np.testing.assert_allclose(ours, expected, atol=1e-6)

    # In a fresh interpreter that cannot import torch, scikit-learn, lifelines or pandas.
    code = ("import sys\nfor m in ('torch','sklearn','lifelines','pandas'): sys.modules[m] = None\n"
            "import numpy as np\nfrom PASTALib.heads.head_file import load\n"
            f"h = load({str(paths['binary'])!r})\nprint(h.predict(np.zeros((1, 32)))[0].value)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("large", "small")


@pytest.fixture(scope="module")
def liver_model(tmp_path_factory) -> Path:
    """The tiny network with its liver class presented as liver tumours (same weights, same SHA256)."""
    folder = shutil.copytree(TINY, tmp_path_factory.mktemp("models") / "liver_as_lesion")
    card = json.loads((folder / "model.json").read_text())
    card["classes"][1]["lesion_type"] = "liver_tumor"
    (folder / "model.json").write_text(json.dumps(card))
    return folder


@pytest.mark.slow
def test_analyze_adds_each_heads_prediction_with_provenance(heads, liver_model, tmp_path, capfd):
    import jsonschema

    paths, _ = heads
    out = tmp_path / "analysis"
    code, err = run_in_process(capfd, "analyze", "sample", "--model", str(liver_model), "-o", str(out), "--device",
                               "cpu", "--head", str(paths["stage"]), "--head", str(paths["survival"]),
                               "--head", str(paths["binary"]))
    assert code == 0, err
    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, json.loads(SCHEMA.read_text()))
    from PASTALib.report.model import Report

    assert Report.from_dict(report).to_dict() == report  # the typed model keeps every head field
    assert report["findings"]
    for finding in report["findings"]:
        tasks = [h["task"] for h in finding["heads"]]
        assert tasks == ["stage", "survival", "binary"]
        stage, survival, binary = finding["heads"]
        assert stage["value"] in ("T1", "T2", "T3") and abs(sum(stage["probabilities"].values()) - 1) < 1e-6
        assert survival["relative_hazard"] > 0 and len(survival["survival"]) >= 1
        assert binary["value"] in ("large", "small")
        provenance = stage["provenance"]
        assert provenance["sha256"] == load_head(paths["stage"]).sha256
        assert provenance["training_size"] >= 22 and provenance["cv_metric"] == "balanced_accuracy"
        assert provenance["features_model_sha256"] == load_model(TINY).sha256["model.safetensors"]
        # T-category stage heads go through the staging hook; the rule's category stays beside it
        if finding["staging"]["status"] == "size_based":
            assert finding["staging"]["source"] == "model" and finding["staging"]["value"] == stage["value"]
            assert finding["staging"]["rule_value"] and finding["staging"]["model"]["value"] == stage["value"]
    markdown, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "Learned head" in markdown and "Learned head" in html
    assert provenance["sha256"][:12] in markdown and provenance["sha256"][:12] in html

    # `pasta features --findings OUTDIR` featurises the same findings: the head gives the same answers.
    csv_path = tmp_path / "analysed.csv"
    code, err = run_in_process(capfd, "features", "sample", "--findings", str(out), "--model", str(liver_model),
                               "-o", str(csv_path), *TEST_CROPS, "--device", "cpu", "--case-id", "s")
    assert code == 0, err
    rows = feature_rows(csv_path)
    assert [r["id"] for r in rows] == [f"s/{f['id']}" for f in report["findings"]]
    predictions = load_head(paths["stage"]).predict(np.array([[float(r[f"f{c}"]) for c in range(32)] for r in rows]))
    for finding, prediction in zip(report["findings"], predictions):
        stage = finding["heads"][0]["probabilities"]
        assert prediction.value == finding["heads"][0]["value"]
        np.testing.assert_allclose([prediction.probabilities[c] for c in sorted(stage)],
                                   [stage[c] for c in sorted(stage)], atol=1e-5)


def _random_model(folder: Path, widths: tuple, seed: int) -> Path:
    import torch

    from PASTALib.model.checkpoints import save_model_folder
    from PASTALib.model.network import PastaUNet, UNetConfig

    tiny = load_model(TINY)
    config = UNetConfig(**{**tiny.config.as_dict(), "stage_widths": widths})
    torch.manual_seed(seed)
    state = PastaUNet(config).state_dict()
    classes = [type(c)(c.id, c.name, "liver_tumor" if c.id == 1 else None) for c in tiny.classes]
    return save_model_folder(folder, [state], classes, tiny.preprocessing, f"random {widths}")


def test_analyze_refuses_a_head_of_another_model(heads, tmp_path, capfd):
    paths, _ = heads
    narrower = _random_model(tmp_path / "narrow", (8, 16, 24, 24), 1)
    code, err = run_in_process(capfd, "analyze", "sample", "--model", str(narrower), "-o", str(tmp_path / "a"),
                               "--device", "cpu", "--head", str(paths["binary"]))
    assert code == 2
    assert "trained on 32 features" in err and "gives 24 features" in err
    same_width = _random_model(tmp_path / "other", (8, 16, 32, 32), 2)
    code, err = run_in_process(capfd, "analyze", "sample", "--model", str(same_width), "-o", str(tmp_path / "b"),
                               "--device", "cpu", "--head", str(paths["binary"]))
    assert code == 2 and "weights SHA256" in err
    organ_head = json.loads(paths["binary"].read_text())
    organ_head["features"]["kind"] = "organ"
    (tmp_path / "organ.json").write_text(json.dumps(organ_head))
    damaged = json.loads(paths["binary"].read_text())
    damaged["model"]["coef"] = [damaged["model"]["coef"][0][:-1]]
    (tmp_path / "damaged.json").write_text(json.dumps(damaged))
    for name, words in (("organ.json", "trained on organ features"), ("damaged.json", "model.coef has shape")):
        code, err = run_in_process(capfd, "analyze", "sample", "--model", str(TINY), "-o", str(tmp_path / "c"),
                                   "--head", str(tmp_path / name))
        assert code == 2 and words in err
    assert not any((tmp_path / name).exists() for name in "abc")  # refused before any work


def test_bad_head_inputs_exit_2_naming_the_problem(cohort, tmp_path, capfd):
    csv_path, rows, labels, _ = cohort
    features = ["--features", str(csv_path)]

    def fit(label_rows, task="binary", header=("id", "label"), extra=()):
        path = write_labels(tmp_path / f"labels{len(list(tmp_path.iterdir()))}.csv", list(header), label_rows)
        return run_in_process(capfd, "fit-head", *features, "--labels", str(path), "--task", task,
                              "-o", str(tmp_path / "head.json"), *extra)

    ids = [r["id"] for r in rows]
    code, err = fit([[i.replace("/", "_"), "a" if n % 2 else "b"] for n, i in enumerate(ids)])
    assert code == 2 and f"{len(ids)} of {len(ids)} label ids have no row" in err and "case00_F1" in err
    code, err = fit([[i, "a" if n % 2 else "b"] for n, i in enumerate(ids)] + [["case99/F1", "a"]])
    assert code == 2 and "1 of" in err and "case99/F1" in err
    code, err = fit([[i, "same"] for i in ids])
    assert code == 2 and "at least two classes" in err
    code, err = fit([[i, "NaN" if n == 3 else "a" if n % 2 else "b"] for n, i in enumerate(ids)])
    assert code == 2 and "missing or NaN" in err and ids[3] in err
    code, err = fit([[i, "10", "1" if n < 3 else "0"] for n, i in enumerate(ids)], "survival", ("id", "time", "event"))
    assert code == 2 and "Only 3 event(s)" in err and "too few" in err
    code, err = fit([[i, "a" if n % 2 else "b"] for n, i in enumerate(ids)], "survival")
    assert code == 2 and "id, time, event" in err

    text = csv_path.read_text().splitlines()
    broken = tmp_path / "nan.csv"
    cells = text[2].split(",")
    cells[-1] = "nan"
    broken.write_text("\n".join([text[0], text[1], ",".join(cells), *text[3:]]) + "\n")
    features[1] = str(broken)
    code, err = fit([[i, "a" if n % 2 else "b"] for n, i in enumerate(ids)])
    assert code == 2 and "NaN" in err and cells[0] in err

    other = tmp_path / "other_model.csv"
    other.write_text("\n".join([text[0], *[line.replace(rows[0]["model_sha256"], "f" * 64).replace("case", "more")
                                           for line in text[1:]]]) + "\n")
    features[1:] = [str(csv_path), "--features", str(other)]
    code, err = fit([[i, "a" if n % 2 else "b"] for n, i in enumerate(ids)] +
                    [[i.replace("case", "more"), "a" if n % 2 else "b"] for n, i in enumerate(ids)])
    assert code == 2 and "mix 2 models" in err
    narrow = tmp_path / "narrow.csv"  # features of a model with a narrower encoder
    narrow.write_text("\n".join([text[0].rsplit(",", 1)[0],
                                 *(line.rsplit(",", 1)[0].replace("case", "more") for line in text[1:])]) + "\n")
    features[1:] = [str(csv_path), "--features", str(narrow)]
    code, err = fit([[i, "a" if n % 2 else "b"] for n, i in enumerate(ids)])
    assert code == 2 and "dimension 32 and 31" in err
    assert not (tmp_path / "head.json").exists()
