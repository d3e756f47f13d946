"""Every python and bash block in README.md and docs/ runs (a doc example that breaks fails CI).

Blocks of one page run in order in one fresh folder, each in its own process (python blocks: a
fork of one that has imported torch and resfam, see RUNNER). README's two set-up commands are not
re-run here: they are what .ci/run executes (tests/test_docs.py checks that); README's quick tours
that are also a docs page's block, word for word, run with that page. ```text / ```py / ```yaml
blocks are illustrations (configs for other frameworks, GPU-only commands) and are not run.

Examples that load published weights (``pretrained=True``) read them offline from a Hugging Face
cache the test fills with random weights of the right layout, where timm's loader looks: the
examples run as written, without the network."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import warm_hf_cache

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.S)


def blocks(page: Path) -> list[tuple[str, str]]:
    found = BLOCK.findall(page.read_text())
    if page.name == "README.md":
        found = found[2:]  # the set-up commands, run by .ci/run itself
        # a block the README shares verbatim with a docs page (its quick tours) runs there, once
        found = [b for b in found if b not in DOCS_BLOCKS]
    return found


DOCS_BLOCKS = {b for p in PAGES[1:] for b in BLOCK.findall(p.read_text())}


RUNNABLE = [p for p in PAGES if blocks(p)]
WEIGHTS = {"timm/resnet50.a1_in1k": "resnet50", "timm/res2net50_26w_4s.in1k": "res2net50_26w_4s"}


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory):
    import timm

    hf = tmp_path_factory.mktemp("hf")
    for repo_id, arch in WEIGHTS.items():
        warm_hf_cache(hf, repo_id, timm.create_model(arch).state_dict())
    return dict(os.environ, HF_HOME=str(hf), HF_HUB_OFFLINE="1",
                TORCH_HOME=str(tmp_path_factory.mktemp("torch")))


# Python blocks run in a fork of one process that has imported torch, torchvision, timm and
# resfam (about 5 s a block saved): each block still starts from that fresh state, in its own
# process, with no name or setting from an earlier block. The runner has run no torch op (no
# thread pool to lose in the fork), reads one job per line and answers each block's exit status.
RUNNER = """
import json, os, signal, sys, traceback
import torch, torchvision, timm, resfam
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        signal.alarm(job["timeout"])
        os.chdir(job["cwd"])
        log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.argv = ["-c"]
        try:
            exec(compile(job["code"], "<block>", "exec"), {"__name__": "__main__"})
            status = 0
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else int(e.code is not None)
        except BaseException:
            traceback.print_exc()
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
"""
TIMEOUT = 900


@pytest.fixture(scope="module")
def python_runner(offline_env):
    proc = subprocess.Popen([sys.executable, "-c", RUNNER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=offline_env)

    def run(code: str, cwd: Path) -> tuple[int, str]:
        log = cwd / ".block.log"
        proc.stdin.write(json.dumps(dict(code=code, cwd=str(cwd), log=str(log), timeout=TIMEOUT)) + "\n")
        proc.stdin.flush()
        status = proc.stdout.readline()
        assert status, "the block runner died"
        return int(status), log.read_text()

    yield run
    proc.kill()  # (nothing of its own to finish: the blocks ran in its children)
    proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(ROOT)) for p in RUNNABLE])
def test_page_examples_run(page, tmp_path, offline_env, python_runner):
    for i, (lang, code) in enumerate(blocks(page)):
        if lang == "python":
            returncode, stderr = python_runner(code, tmp_path)
        else:
            proc = subprocess.run(["bash", "-e", "-c", code], cwd=tmp_path, capture_output=True,
                                  text=True, timeout=TIMEOUT, env=offline_env)
            returncode, stderr = proc.returncode, proc.stderr
        assert returncode == 0, f"{page.name} block {i} ({lang}) failed:\n{code}\n{stderr[-3000:]}"


def test_a_failing_block_fails_in_the_runner(tmp_path, python_runner):
    """The forked runner reports what ``python -c`` would: the exit status and the traceback."""
    assert python_runner("import sys; sys.exit(3)", tmp_path)[0] == 3
    status, err = python_runner("import resfam\nresfam.build('no_such_net')", tmp_path)
    assert status == 1 and "no_such_net" in err and "Traceback" in err
    assert python_runner("x = 1", tmp_path) == (0, "")
    status, err = python_runner("print(x)", tmp_path)  # nothing carried over from a block
    assert status == 1 and "NameError" in err


def test_readme_and_docs_have_examples():
    assert len(RUNNABLE) >= 4 and sum(len(blocks(p)) for p in RUNNABLE) >= 10


def test_the_readme_blocks_left_to_a_docs_page_are_run_there():
    readme = BLOCK.findall((ROOT / "README.md").read_text())[2:]
    shared = [b for b in readme if b in DOCS_BLOCKS]
    assert len(shared) == 2 and all("resfam-" in code for _, code in shared)
    assert len(blocks(ROOT / "README.md")) == len(readme) - len(shared)
