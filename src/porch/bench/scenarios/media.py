"""media: one large attachment sent and fetched through the SDK, beside a plain file copy.

Setup (not measured): a file of ``--size-mb`` MiB of random bytes is written into the
target's temporary directory (in 1 MiB chunks, hashed as it is written), and two accounts are
registered with the SDK (``Client.register``, keys and all, as a user would). The server runs
with ``PORCH_MEDIA_MAX_BYTES`` and ``PORCH_MEDIA_QUOTA_BYTES_PER_DAY`` raised to fit the runs.

Each of ``--runs`` runs has three timed phases, one after the other, each after an
``os.sync()`` (no phase pays for the writeback of another's dirty pages):

1. copy: ``shutil.copyfile`` of the file on the same disk plus ``fsync`` of the copy (in the
   driver): the baseline of what the disk and page cache allow.
2. upload: a fresh sender process runs ``Client.send_file`` to the other account; the time is
   from the call to the server's acknowledgement of the message (encryption, the parts'
   uploads, completion and the message itself). The receiver is online meanwhile and stores
   the message.
3. download: a fresh receiver process runs ``Client.download`` on the attachment pointer
   (fetch, digest and MAC check, decryption into the profile's downloads). The driver then
   compares the SHA-256 of the result with the original's; a mismatch fails the run.

``upload_transfer_s`` / ``download_transfer_s``: when the SDK's progress callback first
reported every byte moved (all parts sent; the blob fetched), which splits each phase into
the transfer and what follows it (completion and the message; the SDK's passes over the
downloaded blob: verification, unless done as the bytes arrive, and decryption).
MB/s are MiB of the plaintext file per second in every phase. The server's figures
(:class:`~porch.bench.stats.ProcessSampler`: CPU seconds and peak RSS) cover each of phases 2
and 3 (with ``--backend s3`` the object store's process too, found by the endpoint's port:
the bytes bypass Porch there); each load process reports its own CPU seconds over its timed
call and its peak RSS (``ru_maxrss``). The result holds the medians over the runs and every
run's figures under ``per_run``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil  # type: ignore[import-untyped, unused-ignore]

from porch.bench import cpu
from porch.bench.driver import Workers
from porch.bench.raw import SmsOutbox
from porch.bench.scenarios import media_figures
from porch.bench.scenarios.base import Scenario, UsageError, register
from porch.bench.scenarios.media_clients import Phase, Result, Spec, work
from porch.bench.scenarios.media_files import sha256_file, timed_copy, write_random
from porch.bench.stats import MB, ProcessSampler
from porch.bench.targets import Target
from porch.client import Client

MAX_SIZE_MB = 2**20  # 1 TiB: the attachment cipher's wire bound (spec §1, 2**40 bytes)
MAX_RUNS = 100
PHONES = ("+14155550101", "+14155550102")  # a fresh server each time: no number is taken
STEP_SLACK = 60.0  # seconds the driver allows a load process beyond --timeout per step


async def _register(url: str, data_dir: Path, profiles: list[Path]) -> list[str]:
    outbox = SmsOutbox(data_dir / "sms-outbox.jsonl")
    accounts: list[str] = []
    for phone, profile in zip(PHONES, profiles, strict=True):

        async def read_code(phone: str = phone) -> str:
            return await outbox.code_for(phone)

        config = await Client.register(url, phone, read_code, profile, name=profile.name)
        accounts.append(config.account_id)
    return accounts


class _Meters:
    """The server's sampler and, with --backend s3, the object store's: marked together."""

    def __init__(self, server: ProcessSampler, store: ProcessSampler | None) -> None:
        self.samplers = {"server": server} | ({"store": store} if store else {})

    def start(self) -> None:
        for sampler in self.samplers.values():
            sampler.mark_start()

    def end(self, load_cpu_s: float) -> dict[str, Any]:
        """Figures since start(), under "server" (and "store"), and what the machine's other
        processes used meanwhile (the load process, whose CPU is given, and the store aside)."""
        figures = {name: s.mark_end() for name, s in self.samplers.items()}
        store_cpu_s = [figures["store"].cpu_s] if "store" in figures else []
        others = cpu.others_pct(figures["server"], [load_cpu_s, *store_cpu_s])
        return {name: vars(f) for name, f in figures.items()} | {
            "machine_others_pct_by_phase": others
        }


@register
class Media(Scenario):
    name = "media"
    help = "one large attachment through send_file and download, beside a plain file copy"
    supported = ("sqlite",)
    default_targets = ("sqlite",)
    headline = ("upload_mb_s", "MB/s")
    option_defaults = {"timeout": 600}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--size-mb", type=int, default=1024, help="file size in MiB (1024: a 1 GiB file)"
        )
        parser.add_argument("--runs", type=int, default=3, help="runs; medians reported (3)")
        parser.add_argument(
            "--backend",
            choices=("fs", "s3"),
            default="fs",
            help="server media backend (fs; s3 needs --s3-endpoint)",
        )
        parser.add_argument(
            "--s3-endpoint",
            help="S3-compatible endpoint for --backend s3, e.g. a SeaweedFS S3 gateway "
            "(credentials: --server-env PORCH_S3_ACCESS_KEY=.. PORCH_S3_SECRET_KEY=..)",
        )
        parser.add_argument(
            "--s3-bucket", default="porch-bench", help="bucket for --backend s3 (porch-bench)"
        )

    @property
    def size(self) -> int:
        return int(self.args.size_mb) * MB

    def check(self) -> None:
        a = self.args
        if not 1 <= a.size_mb <= MAX_SIZE_MB or not 1 <= a.runs <= MAX_RUNS:
            raise UsageError(f"--size-mb must be 1..{MAX_SIZE_MB} and --runs 1..{MAX_RUNS}")
        if a.backend == "s3" and not a.s3_endpoint:
            raise UsageError("--backend s3 needs --s3-endpoint URL (a SeaweedFS S3 gateway, say)")
        # On disk at once: the original, a copy or a download, and every run's stored blob.
        need = (2 + a.runs) * self.size * 1.1
        free = shutil.disk_usage(tempfile.gettempdir()).free
        if need > free:
            raise UsageError(
                f"--size-mb {a.size_mb} with --runs {a.runs} needs about {need / MB:,.0f} MiB "
                f"free in {tempfile.gettempdir()}, which has {free / MB:,.0f} MiB: use a "
                "smaller --size-mb or fewer --runs, or point TMPDIR at a bigger disk"
            )

    def variants(self) -> list[tuple[str, Any]]:
        return [(self.args.backend, self.args.backend)]

    def env(self) -> dict[str, str]:
        a = self.args
        # Room for every run's blob (padding adds at most 5%, spec §1) within one day's quota.
        env = {
            "PORCH_MEDIA_MAX_BYTES": str(min(self.size + MB, MAX_SIZE_MB * MB)),
            "PORCH_MEDIA_QUOTA_BYTES_PER_DAY": str(2 * a.runs * self.size + 64 * MB),
            "PORCH_MEDIA_BACKEND": a.backend,
        }
        if a.backend == "s3":
            env |= {"PORCH_S3_ENDPOINT": a.s3_endpoint, "PORCH_S3_BUCKET": a.s3_bucket}
        return env

    def setup(self, target: Target) -> None:
        node = target.nodes[0]
        assert node.data_dir is not None
        started = time.monotonic()
        self.source = target.tmp / f"media-{self.args.size_mb}mb.bin"
        self.digest = write_random(self.source, self.size)
        wrote = time.monotonic() - started
        self.profiles = [target.tmp / "sender", target.tmp / "receiver"]
        self.accounts = asyncio.run(_register(node.http_url, node.data_dir, self.profiles))
        print(
            f"  setup: wrote {self.args.size_mb} MiB of random bytes in {wrote:.1f} s, "
            f"registered 2 accounts in {time.monotonic() - started - wrote:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    def run(self, target: Target, sampler: ProcessSampler) -> dict[str, Any]:
        runs = []
        with ProcessSampler(self._store_pids()) as store:
            meters = _Meters(sampler, store if store.pids else None)
            for i in range(self.args.runs):
                runs.append(self._one(i, target, meters))
                r = runs[-1]
                print(
                    f"  run {i + 1}: copy {r['copy_mb_s']} MB/s, upload {r['upload_mb_s']} "
                    f"MB/s, download {r['download_mb_s']} MB/s, digest {media_figures.verdict(r)}",
                    file=sys.stderr,
                    flush=True,
                )
        return self._figures(runs)

    def _store_pids(self) -> list[int]:
        """The S3 store's process (--backend s3: whatever listens on the endpoint's port), so
        that its CPU and RSS are measured too: the parts and the blob bypass Porch there."""
        if self.args.backend != "s3":
            return []
        port = urlsplit(self.args.s3_endpoint).port or 80
        try:
            listening = psutil.net_connections(kind="tcp")
        except psutil.Error:
            listening = []
        pids = sorted(
            {c.pid for c in listening if c.pid and c.status == "LISTEN" and c.laddr.port == port}
        )
        if not pids:
            print(
                f"  the process serving {self.args.s3_endpoint} was not found (another machine, "
                "or no permission): its CPU and RSS are not measured",
                file=sys.stderr,
            )
        return pids

    def _one(self, i: int, target: Target, meters: _Meters) -> dict[str, Any]:
        a = self.args
        # Each timed phase starts with no dirty pages left by the one before (writing the
        # source, a blob, a download), so no phase pays for another's writeback.
        os.sync()
        copy_s = timed_copy(self.source, target.tmp / "copy.bin")
        sender, receiver = (str(p) for p in self.profiles)
        specs = [
            Spec("sender", sender, self.accounts[1], str(self.source), a.timeout),
            Spec("receiver", receiver, self.accounts[0], timeout=a.timeout),
        ]
        errors: list[str] = []
        with Workers(work, specs) as workers:

            def step(action: str, arg: Any = None) -> list[Any]:
                workers.broadcast("step", (action, arg))
                return workers.expect("step", a.timeout + STEP_SLACK)

            step("connect")
            os.sync()
            meters.start()
            up: Phase
            (up, client_id), _ = step("upload")
            measured = {"upload": meters.end(up.cpu_s)}
            arrive, down, path = Phase(), Phase(), ""
            if client_id:
                _, arrive = step("arrive", client_id)
                os.sync()
                meters.start()
                _, (down, path) = step("download")
                measured["download"] = meters.end(down.cpu_s)
            workers.broadcast("step", ("close", client_id))
            done: list[Result] = workers.results(a.timeout + STEP_SLACK)
        digest_ok = False
        if path:
            digest_ok = sha256_file(Path(path)) == self.digest
            Path(path).unlink()
            if not digest_ok:
                errors.append("the downloaded file's SHA-256 differs from the original's")
        phases = {"upload": up, "arrive": arrive, "download": down}
        errors += [f"{name}: {p.error}" for name, p in phases.items() if p.error]
        copy = media_figures.mb_s(self.size, copy_s)
        upload = media_figures.mb_s(self.size, up.wall_s) if not up.error else None
        download = media_figures.mb_s(self.size, down.wall_s) if path else None
        return {
            "run": i + 1,
            "copy_s": round(copy_s, 3),
            "copy_mb_s": copy,
            "upload_s": up.wall_s,
            "upload_mb_s": upload,
            "upload_transfer_s": up.transfer_s,
            "arrive_s": arrive.wall_s,
            "download_s": down.wall_s,
            "download_mb_s": download,
            "download_transfer_s": down.transfer_s,
            "upload_vs_copy": media_figures.ratio(upload, copy),
            "download_vs_copy": media_figures.ratio(download, copy),
            "digest_ok": digest_ok,
            **{
                side: {phase: m[side] for phase, m in measured.items()}
                for side in measured["upload"]
            },
            "load": {
                "upload": media_figures.load_figures(up, done[0].peak_rss_mb),
                "download": media_figures.load_figures(down, done[1].peak_rss_mb),
            },
            "receipt": done[0].extra.get("receipt", False),
            "errors": errors,
        }

    def _figures(self, runs: list[dict[str, Any]]) -> dict[str, Any]:
        out = {"size_mb": self.args.size_mb, "backend": self.args.backend}
        return out | media_figures.summary(runs, self.size)

    def ok(self, result: dict[str, Any]) -> bool:
        return super().ok(result) and bool(result.get("digest_ok"))

    def columns(self) -> list[tuple[str, str]]:
        return [
            ("MiB", "size_mb"),
            ("runs", "runs"),
            ("copy MB/s", "copy_mb_s"),
            ("up MB/s", "upload_mb_s"),
            ("down MB/s", "download_mb_s"),
            ("up/copy", "upload_vs_copy"),
            ("down/copy", "download_vs_copy"),
            ("srv rss up", "server.upload.peak_rss_mb"),
            ("srv rss down", "server.download.peak_rss_mb"),
            ("srv cpu up s", "server.upload.cpu_s"),
            ("srv cpu down s", "server.download.cpu_s"),
            *(
                [
                    ("store cpu up s", "store.upload.cpu_s"),
                    ("store rss up", "store.upload.peak_rss_mb"),
                ]
                if self.args.backend == "s3"
                else []
            ),
            ("cli rss up", "load.upload.peak_rss_mb"),
            ("cli rss down", "load.download.peak_rss_mb"),
            ("cli cpu up s", "load.upload.cpu_s"),
            ("cli cpu down s", "load.download.cpu_s"),
            ("digest", "digest_ok"),
        ]
