#!/usr/bin/env bash
# Copies stdin to stdout; after every stack line that common/crash_report.h prints
# ("file(+0xoffset)[address]"), adds the function and source line from addr2line.
#   some_command 2>&1 | bash scripts/resolve_stack.sh
while IFS= read -r line; do
  printf '%s\n' "$line"
  if [[ $line =~ ^([^\(]+)\(\+?(0x[0-9a-f]+)\)\[ ]] || [[ $line =~ ^([^\(]+)\([^+\)]*\+(0x[0-9a-f]+)\)\[ ]]; then
    file=${BASH_REMATCH[1]} off=${BASH_REMATCH[2]}
    [[ $line =~ \(\+0x ]] || continue  # symbol+offset lines are named already
    command -v addr2line >/dev/null && [ -f "$file" ] &&
      addr2line -f -C -i -e "$file" "$off" 2>/dev/null | paste -sd' ' | sed 's/^/    -> /'
  fi
done
