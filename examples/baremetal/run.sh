#!/bin/sh
# run.sh BOARD ELF [QEMU-OPTION...]: runs a bare-metal ELF on one of QEMU's
# Arm boards (mps2-an385, mps2-an500, mps3-an547) with semihosting, and
# exits with the program's own exit status (its SYS_EXIT_EXTENDED code),
# 124 if it runs longer than $RUN_TIMEOUT seconds (default 300), or 2 on
# bad arguments.  Extra arguments go to QEMU (e.g. -d unimp,guest_errors).
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 BOARD ELF [QEMU-OPTION...]" >&2
  exit 2
fi
board=$1 elf=$2
shift 2
case $board in
mps2-an385 | mps2-an500 | mps3-an547) ;;
*)
  echo "$0: unknown board '$board' (mps2-an385, mps2-an500, mps3-an547)" >&2
  exit 2
  ;;
esac
if [ ! -f "$elf" ]; then
  echo "$0: no such file: $elf" >&2
  exit 2
fi
secs=${RUN_TIMEOUT:-300}
# $RUN_ARGS: the program's command line (semihosting SYS_GET_CMDLINE),
# after its name; words without commas
args=",arg=$(basename "$elf")"
for w in ${RUN_ARGS:-}; do args="$args,arg=$w"; done
# -nographic routes the (unused) UART and the monitor to stdio; semihosting
# output goes straight to QEMU's stdout and stderr.  </dev/null keeps QEMU
# off the terminal, so a timeout cannot leave it in raw mode.
timeout -k 5 "$secs" qemu-system-arm -M "$board" -nographic \
  -semihosting-config "enable=on,target=native$args" -kernel "$elf" "$@" </dev/null
status=$?
if [ $status -eq 124 ]; then
  echo "$0: $elf did not finish within $secs s on $board" >&2
fi
exit $status
