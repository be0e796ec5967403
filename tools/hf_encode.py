#!/usr/bin/env python3
"""Prints the ids Hugging Face tokenizers gives FILE under TOKENIZER.JSON, in the format of
`ablate tokenizer encode` (used to check the C encoder and to make tests/test_data.c's expected ids):
    python3 tools/hf_encode.py tok.json FILE"""
import sys
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
text = open(sys.argv[2], "rb").read().decode("utf-8")
print(" ".join(str(i) for i in tok.encode(text).ids))
