# spills.awk: stack traffic in the innermost FMA loops of an assembly file
# (cnnc --emit-asm; x86-64 AT&T, AArch64, Thumb-2 and MVE syntax).
#
# A loop is a branch to a label above it in the same function; it is
# innermost when no other loop lies inside it, and a kernel loop when it
# holds a multiply-add (vfmadd/vfmla/fmla/vfma/fmadd/vmla, or the soft-float
# call __aeabi_fmul).  Every load or store with the stack pointer as its
# base in such a loop is a spill or a reload.  Prints one line per kernel
# loop: FUNCTION LABEL INSTRUCTIONS STACK-REFS [the first offending line],
# then "loops N spills S"; `-v only=RE` keeps the functions whose name
# (after the model name and a dot) starts with a match of RE; `-v dump=DIR`
# writes each such loop's instructions to DIR/FUNCTION.LABEL.s (the input
# of bench/mca.sh's llvm-mca runs).
function flush(   i, j, k, inner, fma, sp, bad, first) {
  for (i = 1; i <= nbr; i++) last[br_to[i]] = i
  for (i = 1; i <= nbr; i++) {
    from = lab[br_to[i]]
    to = br_at[i]
    if (from == "" || from > to || last[br_to[i]] != i) continue # one loop per header: its last latch
    inner = 1
    for (k = 1; k <= nbr; k++)
      if (k != i && lab[br_to[k]] != "" && lab[br_to[k]] > from && br_at[k] <= to && lab[br_to[k]] < br_at[k]) inner = 0
    if (!inner) continue
    fma = 0; sp = 0; first = ""
    for (j = from; j <= to; j++) {
      if (line[j] ~ /(vfmadd|vfnmadd|vfmla|fmla|vfma|fmadd|vmla|vmul|mulps|fmul)[a-z0-9.]*[ \t]/ || line[j] ~ /__aeabi_fmul/) fma = 1
      if (line[j] ~ /\[sp[],]|\(%rsp\)|\(%esp\)/) { sp++; if (first == "") first = line[j] }
    }
    if (!fma) continue
    loops++
    spills += sp
    if (dump != "") { # -v dump=DIR: each loop's body into DIR/FUNCTION.LABEL.s (for llvm-mca)
      f = dump "/" fn "." br_to[i] ".s"
      for (j = from; j <= to; j++) print line[j] > f
      close(f)
    }
    gsub(/[ \t]+/, " ", first)
    printf "%s %s %d %d%s\n", fn, br_to[i], to - from, sp, first == "" ? "" : " |" first
  }
  nbr = 0; n = 0; delete lab; delete line; delete last
}
/^[A-Za-z_][A-Za-z0-9_.$]*:/ {
  name = $0; sub(/:.*/, "", name)
  flush()
  fn = name
  keep = only == "" || substr(fn, index(fn, ".") + 1) ~ ("^(" only ")")
  next
}
/^\.?L[A-Za-z0-9_$.]*:/ { l = $0; sub(/:.*/, "", l); lab[l] = n + 1; next }
/^[ \t]*[.@#;]/ { next }
/^[ \t]*$/ { next }
{
  if (!keep) next
  line[++n] = $0
  # a branch to a local label: b/bne/cbz (Arm), j* (x86), b.ne (AArch64), le/letp (MVE low-overhead loops)
  if ($1 ~ /^(b|j|cb|le|wls|dls)/ && match($0, /[ \t,](\.?L[A-Za-z0-9_$.]*)[ \t]*$/)) {
    t = substr($0, RSTART + 1); gsub(/[ \t,]/, "", t)
    br_to[++nbr] = t; br_at[nbr] = n
  }
}
END { flush(); printf "loops %d spills %d\n", loops, spills }
