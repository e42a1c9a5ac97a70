"""Command line: serve LSP (default), manage models, one-shot completion, environment diagnosis.

stdout belongs to the LSP channel in stdio mode, so logs and progress always go to stderr or --log-file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .config import BACKEND_KINDS, DEFAULT_MODEL, BackendConfig, Config
from .errors import CodegemmaError

log = logging.getLogger("codegemma_lsp")


def _common(parser: argparse.ArgumentParser) -> None:
    """Options accepted before or after a subcommand (SUPPRESS: unset unless given, so neither level clobbers)."""
    s = argparse.SUPPRESS
    parser.add_argument("--model", default=s, help=f"registry alias or path to a .gguf file (default {DEFAULT_MODEL})")
    parser.add_argument("--n-gpu-layers", type=int, default=s, help="layers to offload to Metal/CUDA; -1 = all (default)")
    parser.add_argument("--ctx-size", type=int, default=s, help="llama.cpp context size in tokens (default 4096)")
    parser.add_argument("--threads", type=int, default=s, help="CPU threads for inference (default: all cores)")
    parser.add_argument("--max-tokens", type=int, default=s, help="longest completion in tokens (default 64)")
    parser.add_argument("--time-budget-ms", type=int, default=s, help="stop generating this long after the model "
                        "starts on a request; the text so far is shown (default 0: no limit)")
    parser.add_argument("--backend", metavar="URL", default=s, help="send prompts to this inference server "
                        "(llama-server, OpenAI-compatible /v1/completions, Ollama) instead of loading a model")
    parser.add_argument("--backend-kind", choices=BACKEND_KINDS, default=s, help="kind of server (default: detected)")
    parser.add_argument("--backend-model", metavar="NAME", default=s, help="the server's model (default: the first "
                        "it lists)")
    parser.add_argument("--backend-tokenizer", metavar="GGUF", default=s, help="registry alias or .gguf path of "
                        "the served model, to tokenize locally (default: the server's tokenizer)")
    parser.add_argument("--no-download", action="store_true", default=s, help="never download a missing model")
    parser.add_argument("--log-file", default=s, help="write logs here instead of stderr")
    parser.add_argument("--log-level", default=s, choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codegemma-lsp", description="Local fill-in-the-middle code completion over LSP (llama.cpp)."
    )
    parser.add_argument("--version", action="version", version=f"codegemma-lsp {__version__}")
    _common(parser)
    parser.add_argument("--tcp", type=int, metavar="PORT", help="serve on TCP PORT instead of stdio")
    parser.add_argument("--stdio", action="store_true", help="serve on stdin/stdout (the default; accepted because "
                        "clients such as vscode-languageclient pass it)")
    parser.add_argument("--host", default="127.0.0.1", help="address for --tcp (default 127.0.0.1; anything else "
                        "exposes your code to the network)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve LSP (the default)")
    models = sub.add_parser("models", help="list, download and locate models")
    models_sub = models.add_subparsers(dest="models_command", required=True)
    models_sub.add_parser("list", help="known models and whether they are on disk")
    for name, text in (("pull", "download and verify a model"), ("path", "print a model's file path")):
        p = models_sub.add_parser(name, help=text)
        p.add_argument("alias")
    complete = sub.add_parser("complete", help="one-shot completion at FILE:LINE:COL (1-based), printed to stdout")
    complete.add_argument("location", metavar="FILE:LINE:COL")
    complete.add_argument("--json", action="store_true", help="print the completion and its figures as JSON")
    _common(complete)
    doctor = sub.add_parser("doctor", help="llama.cpp build, GPU offload, model cache and model status")
    _common(doctor)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    values = {
        "model": getattr(args, "model", None),
        "n_gpu_layers": getattr(args, "n_gpu_layers", None),
        "ctx_size": getattr(args, "ctx_size", None),
        "threads": getattr(args, "threads", None),
        "max_tokens": getattr(args, "max_tokens", None),
        "time_budget_ms": getattr(args, "time_budget_ms", None),
    }
    backend = {
        "url": getattr(args, "backend", None),  # checked when connecting, with the fix in the message
        "kind": getattr(args, "backend_kind", None),
        "model": getattr(args, "backend_model", None),
        "tokenizer": getattr(args, "backend_tokenizer", None),
    }
    values["backend"] = BackendConfig(**{k: v for k, v in backend.items() if v is not None})
    return Config(**{k: v for k, v in values.items() if v is not None})


def setup_logging(args: argparse.Namespace) -> None:
    level = getattr(logging, getattr(args, "log_level", "INFO"))
    log_file = getattr(args, "log_file", None)
    handler: logging.Handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pygls logs every message body at INFO; keep that for DEBUG sessions only.
    logging.getLogger("pygls").setLevel(level if level <= logging.DEBUG else logging.WARNING)


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import build_server

    server = build_server(config_from_args(args), download=not getattr(args, "no_download", False))
    if args.tcp is not None:
        log.info("serving LSP on %s:%d", args.host, args.tcp)
        server.start_tcp(args.host, args.tcp)
    else:
        # The LSP channel gets its own copy of stdout, and fd 1 itself points at stderr: a native library that
        # prints to stdout (llama.cpp, a GPU runtime) can then never corrupt the JSON-RPC stream.
        channel = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
        server.start_io(sys.stdin.buffer, channel)
    if not server.release_workers():  # a model load or download is still running: do not wait for it
        log.warning("exiting while a model load is still running")
        logging.shutdown()
        os._exit(server.exit_code)
    return server.exit_code


def cmd_models(args: argparse.Namespace) -> int:
    from .registry import is_present, load_registry, local_path

    registry = load_registry()
    if args.models_command == "list":
        rows = [("ALIAS", "FAMILY", "PARAMS", "QUANT", "SIZE", "ON DISK")]
        for spec in registry.models:
            size = f"{'~' if spec.size_approx else ''}{spec.size / 1e9:.2f} GB" if spec.size else "?"
            default = " (default)" if spec.alias == registry.default_alias else ""
            rows.append((spec.alias + default, spec.family, spec.params, spec.quantization, size,
                         "yes" if is_present(spec) else "no"))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
        return 0
    spec = registry.get(args.alias)
    if args.models_command == "path":
        print(local_path(spec))
        return 0 if is_present(spec) else 1
    from .download import pull

    print(pull(spec))
    return 0


def _offset(text: str, line: int, col: int) -> int:
    """1-based LINE:COL (columns in characters) -> code-point offset, clamped to the line."""
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        raise CodegemmaError(f"line {line} is outside the file (1..{len(lines)})")
    start = sum(len(s) + 1 for s in lines[: line - 1])
    return start + min(max(col - 1, 0), len(lines[line - 1]))


def cmd_complete(args: argparse.Namespace) -> int:
    from .completion import CompletionRequest
    from .loader import load

    file_name, _, rest = args.location.partition(":")
    line, _, col = rest.partition(":")
    if not (line.isdigit() and col.isdigit()):
        raise CodegemmaError(f"expected FILE:LINE:COL, got {args.location!r}")
    path = Path(file_name)
    text = path.read_text(encoding="utf-8", errors="replace")

    def progress(message: str, percent: int | None) -> None:
        print(f"{message}{f' {percent}%' if percent is not None else ''}", file=sys.stderr)

    from .context import ImportGraphContext, WorkspaceIndex

    context = ImportGraphContext(WorkspaceIndex([Path.cwd()]))  # the working directory is the workspace
    loaded = load(config_from_args(args), context=context, progress=progress,
                  download=not getattr(args, "no_download", False))
    try:
        shown = path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        shown = path.name
    request = CompletionRequest(uri=path.resolve().as_uri(), path=shown, text=text,
                                offset=_offset(text, int(line), int(col)), repo=Path.cwd().name)
    result = loaded.service.complete(request)
    if args.json:
        s = result.stats
        print(json.dumps({"text": result.text, "raw": result.raw, "multiline": result.mode.multiline,
                          "template": loaded.service.template.name, "stats": s.__dict__ if s else None,
                          "contextFiles": list(result.context_paths), "contextTokens": result.context_tokens,
                          "timingsMs": result.timings_ms}, indent=2))
    else:
        print(result.text)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from .registry import cache_dir, is_present, load_registry

    print(f"codegemma-lsp {__version__} on Python {sys.version.split()[0]}")
    try:
        import llama_cpp

        print(f"llama-cpp-python {llama_cpp.__version__}")
        print(f"GPU offload supported: {'yes' if llama_cpp.llama_supports_gpu_offload() else 'no (CPU build)'}")
        print(f"llama.cpp system info: {llama_cpp.llama_print_system_info().decode().strip()}")
    except ImportError as exc:
        print(f"llama-cpp-python: NOT INSTALLED ({exc}) — pip install llama-cpp-python")
    print(f"model cache: {cache_dir()}")
    registry = load_registry()
    config = config_from_args(args)
    if config.backend.url:
        _doctor_backend(config)
    for spec in registry.models:
        mark = "*" if spec.alias == config.model else " "
        print(f" {mark} {spec.alias:<24} {'present' if is_present(spec) else 'not downloaded'}")
    return 0


def _doctor_backend(config: Config) -> None:
    """Connect as the server would, and time one tiny completion."""
    from .completion import CompletionRequest
    from .loader import load
    from .remote import RemoteEngine

    print(f"backend: {config.backend.url}")
    try:
        service = load(config, download=False).service
        service.complete(CompletionRequest(uri="doctor", path="doctor.py", text="def add(a, b):\n    return ",
                                           offset=26))
    except CodegemmaError as exc:
        print(f"  NOT USABLE: {exc}")
        return
    engine = service.engine
    assert isinstance(engine, RemoteEngine)  # load() connects whenever a backend is configured
    status = engine.status()
    print(f"  kind {status['kind']}, model {status['model']}, context {status['nCtx']}, "
          f"tokenizer {status['tokenizer']}, template {service.template.name}")
    print(f"  one completion: {status['latency']['lastMs']} ms")


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    setup_logging(args)
    handlers = {None: cmd_serve, "serve": cmd_serve, "models": cmd_models, "complete": cmd_complete,
                "doctor": cmd_doctor}
    try:
        return handlers[args.command](args)
    except CodegemmaError as exc:
        print(f"codegemma-lsp: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
