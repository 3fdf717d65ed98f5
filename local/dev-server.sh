#!/bin/sh
# The Temporal dev server with its output in a log file: what local/temporal.ts runs instead of the
# Temporal CLI when asked for a log file (`npm start` draws its live view on the terminal, which the
# server's banner and warnings would otherwise break into). Takes the CLI's arguments plus two of its
# own, `--baton-cli <the Temporal CLI>` and `--baton-log <file>`; runs the CLI with the others, its
# stdout and stderr appended to the file.
cli=
log=
want=
for arg do
  shift
  case "$want" in
    cli) cli=$arg; want=; continue ;;
    log) log=$arg; want=; continue ;;
  esac
  case "$arg" in
    --baton-cli) want=cli ;;
    --baton-log) want=log ;;
    *) set -- "$@" "$arg" ;;
  esac
done
if [ -z "$cli" ] || [ -z "$log" ]; then
  echo "usage: dev-server.sh <temporal CLI arguments> --baton-cli <path> --baton-log <file>" >&2
  exit 2
fi
exec "$cli" "$@" >>"$log" 2>&1
