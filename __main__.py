"""`python -m badminima` and the `badminima` command: the command line, loaded so that a Ctrl-C while
it loads ends it in one line with exit 130, as a later one does, not with a traceback."""
import sys


def main() -> None:
    try:
        from badminima.cli import main as command_line
        command_line()
    except KeyboardInterrupt:       # before the command's own handling began (it reports later ones)
        sys.stderr.write("error: interrupted; no output was left half-written\n")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
