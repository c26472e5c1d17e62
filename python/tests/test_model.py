"""The P5 class against p5rec's engine: same inputs, same logits; saved folders round-trip."""
import json
import os

import pytest
import torch

from conftest import CLI, ROOT, sh
from p5rec import BACKEND, P5, P5Tokenizer, whole_word_ids
from p5rec.st import load_file, save_file

SOURCES = [
    ("user_684 has the following purchase history : item_594 -> item_523 -> item_758 does the user likely to buy item_357 next ?", "yes"),
    ("Choose the best item from the candidates to recommend for Joe Toland ? item_79 , item_196 , item_389", "item_226"),
    ("What star rating do you think user_23 will give item_7 ?", "4.0"),
]


def engine_reference(folder, out):
    args = ["node", os.path.join(ROOT, "scripts", "t5-reference.mjs"), folder, "--out", out]
    for s, t in SOURCES:
        args += ["--source", s, "--target", t]
    sh(args)
    with open(out) as f:
        return json.load(f)


def max_diff(model, tok, ref):
    worst = 0.0
    model.eval()
    for case in ref["cases"]:
        b = tok.batch([case["source"]], [case["target"]])
        # The Python tokenizer gives the engine's ids and whole-word ids.
        assert b["input_ids"][0].tolist() == case["inputIds"]
        assert b["whole_word_ids"][0].tolist() == case["wholeWordIds"]
        assert b["decoder_input_ids"][0].tolist() == case["decoderInputIds"]
        with torch.no_grad():
            got = model.p5rec_logits(**b.model_inputs())[0]
        worst = max(worst, (got - torch.tensor(case["logits"])).abs().max().item())
    return worst


def test_logits_equal_engine(work, tmp_path):
    ref = engine_reference(work["base"], str(tmp_path / "ref.json"))
    model = P5.from_p5rec(work["base"])
    assert model.initialised == []  # the whole-word table came from the folder
    tok = P5Tokenizer.from_folder(work["base"])
    assert tok.id_tokens, "independent ids: the tokenizer has id tokens"
    diff = max_diff(model, tok, ref)
    print(f"\nbackend {BACKEND}, tokenizer {tok.backend}: logits max |Δ| vs p5rec's engine = {diff:.3e} over {len(ref['cases'])} prompts")
    assert diff < 1e-4
    # Without the whole-word table the logits differ: it is really used.
    b = tok.batch([SOURCES[0][0]], [SOURCES[0][1]])
    with torch.no_grad():
        plain = model.p5rec_logits(b["input_ids"], b["attention_mask"], None, b["decoder_input_ids"])[0]
    assert (plain - torch.tensor(ref["cases"][0]["logits"])).abs().max().item() > 1e-3


def test_save_round_trip_loads_in_engine(work, tmp_path):
    model = P5.from_p5rec(work["base"])
    with torch.no_grad():
        model.encoder.whole_word_embeddings.weight.mul_(1.5)  # a change the engine must see
    out = str(tmp_path / "saved")
    files = model.save_p5rec(out, source=work["base"], dtype="f32")
    assert files == ["model.safetensors"]
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "p5.json", "model.json", "ids.json"):
        assert os.path.exists(os.path.join(out, f)), f
    names = set(load_file(os.path.join(out, "model.safetensors")))
    assert "encoder.whole_word_embeddings.weight" in names and "encoder.embed_tokens.weight" not in names
    ref = engine_reference(out, str(tmp_path / "ref2.json"))
    diff = max_diff(model, P5Tokenizer.from_folder(out), ref)
    print(f"\nsaved by Python, read by the engine: logits max |Δ| = {diff:.3e}")
    assert diff < 1e-4
    # Sharded f16 also loads back.
    out2 = str(tmp_path / "sharded")
    files = model.save_p5rec(out2, source=work["base"], dtype="f16", shard_mb=0.2)
    assert "model.safetensors.index.json" in files and len(files) > 2
    again = P5.from_p5rec(out2)
    for k, v in model.p5rec_state().items():
        assert torch.allclose(again.p5rec_state()[k], v.half().float()), k


def test_whole_word_ids_rule():
    pieces = ["\u2581given", "\u2581user", "_", "12", "item_5", "\u2581?", "</s>"]
    ids = [10, 11, 12, 13, 500, 14, 1]
    assert whole_word_ids(pieces, ids, 1, 0, 511, frozenset({500})) == [1, 2, 2, 2, 3, 4, 0]
    assert whole_word_ids(["a", "\u2581b", "\u2581c"], [5, 6, 7], 1, 0, 1) == [0, 1, 1]  # before the first word: 0; clipped


def test_safetensors_reader_writer(tmp_path):
    t = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.tensor([1.5, -2.0], dtype=torch.float16), "c": torch.tensor([1, 2], dtype=torch.int64)}
    save_file(t, str(tmp_path / "x.safetensors"), metadata={"format": "pt"})
    back = load_file(str(tmp_path / "x.safetensors"))
    for k in t:
        assert back[k].dtype == t[k].dtype and torch.equal(back[k], t[k])


def test_tokenizer_config_loads_in_transformers(work):
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(work["base"])
    ref = P5Tokenizer.from_folder(work["base"]).batch([SOURCES[0][0]])
    assert tok(SOURCES[0][0])["input_ids"] == ref["input_ids"][0].tolist()
    assert tok.eos_token == "</s>" and tok.pad_token == "<pad>"
