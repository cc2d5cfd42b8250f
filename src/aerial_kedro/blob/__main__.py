"""``python -m aerial_kedro.blob``: stage data in Azure Blob (or Azurite) and look at it.

    python -m aerial_kedro.blob upload ../shared/data/eurosat-sample raw/eurosat-sample
    python -m aerial_kedro.blob ls raw/eurosat-sample
    python -m aerial_kedro.blob download aerial/08_reporting ./reporting
    python -m aerial_kedro.blob mkcontainer aerial
    python -m aerial_kedro.blob check-config --env hdinsight

The connection string comes from --connection-string or $AZURE_STORAGE_CONNECTION_STRING.
Errors are one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from aerial_kedro.blob.client import BlobError, connection_string_from, service_client
from aerial_kedro.blob.config_check import ConfigCheckError
from aerial_kedro.blob.transfer import Target, create_container, download, list_blobs, upload
from aerial_kedro.blob.urls import redact_url


def _target(text: str) -> Target:
    try:
        return Target.parse(text)
    except BlobError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aerial_kedro.blob", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def blob_command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--connection-string", help="default: $AZURE_STORAGE_CONNECTION_STRING")
        return sub

    up = blob_command("upload", "upload a file or a folder (recursively) under CONTAINER/PREFIX")
    up.add_argument("source", type=Path)
    up.add_argument("target", type=_target, metavar="CONTAINER/PREFIX")
    up.add_argument("--workers", type=int, default=8, help="parallel uploads (default 8)")
    up.add_argument("--no-overwrite", dest="overwrite", action="store_false", help="fail on an existing blob")
    up.add_argument("--no-create-container", dest="create_container", action="store_false",
                    help="fail if the container does not exist (default: create it)")
    up.add_argument("--follow-symlinks", action="store_true",
                    help="upload what symbolic links inside SOURCE point at (default: skip them)")

    down = blob_command("download", "download every blob under CONTAINER/PREFIX into a folder")
    down.add_argument("target", type=_target, metavar="CONTAINER/PREFIX")
    down.add_argument("destination", type=Path)
    down.add_argument("--workers", type=int, default=8)

    ls = blob_command("ls", "list blobs (name and size) under CONTAINER[/PREFIX]")
    ls.add_argument("target", type=_target, metavar="CONTAINER[/PREFIX]")

    mk = blob_command("mkcontainer", "create containers (existing ones are left as they are)")
    mk.add_argument("names", nargs="+")

    check = commands.add_parser("check-config", help="resolve an environment's catalog offline")
    check.add_argument("--env", default="hdinsight")
    check.add_argument("--project", type=Path, default=Path.cwd())
    return parser


def run(args: argparse.Namespace) -> None:
    if args.command == "check-config":
        from aerial_kedro.blob.config_check import check_environment  # imports Kedro: only here

        check_report = check_environment(args.project, args.env)
        sys.stdout.write(f"{check_report}\n")
        return
    service = service_client(connection_string_from(args.connection_string))
    if args.command == "upload":
        report = upload(service, args.source, args.target, workers=args.workers,
                        overwrite=args.overwrite, create_container=args.create_container,
                        follow_symlinks=args.follow_symlinks)
        if report.skipped:
            sys.stderr.write(f"skipped {len(report.skipped)} symbolic links (pass --follow-symlinks to "
                             f"upload them): {', '.join(report.skipped)}\n")
        sys.stdout.write(f"Uploaded {report} to {args.target}\n")
    elif args.command == "download":
        report = download(service, args.target, args.destination, workers=args.workers)
        sys.stdout.write(f"Downloaded {report} to {args.destination}\n")
    elif args.command == "ls":
        for name, size in list_blobs(service, args.target):
            sys.stdout.write(f"{size:>12}  {name}\n")
    elif args.command == "mkcontainer":
        for name in args.names:
            created = create_container(service, name)
            sys.stdout.write(f"{name}: {'created' if created else 'exists'}\n")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (BlobError, ConfigCheckError) as error:
        sys.stderr.write(f"error: {redact_url(str(error))}\n")
        return 1
    except BrokenPipeError:  # `... ls | head`
        sys.stderr.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
