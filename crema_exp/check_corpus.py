"""Verify a CREMA-D download against the official file list; writes nothing.

    python -m crema_exp.check_corpus /path/to/CREMA-D [--quick] [--partial]

Exit code 0 when every file matches, 1 otherwise (or when the folder does not exist).
"""

from __future__ import annotations

import argparse
import sys

from crema_exp.data.integrity import check_integrity


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crema_exp.check_corpus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="CREMA-D folder (holding AudioWAV/) or the AudioWAV folder")
    parser.add_argument("--quick", action="store_true", help="compare file sizes only (no sha256)")
    parser.add_argument("--partial", action="store_true",
                        help="verify only the files present (do not report missing files)")
    parser.add_argument("--limit", type=int, default=10,
                        help="names listed per problem (default 10)")
    args = parser.parse_args(argv)
    try:
        report = check_integrity(args.root, quick=args.quick, expect_complete=not args.partial)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary(limit=args.limit))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
