# spills.awk: stack traffic in the innermost FMA loops of an assembly file
# (cnnc --emit-asm; x86-64 AT&T, AArch64, Thumb-2 and MVE syntax).
#
# Loops come from each function's control-flow graph, as a compiler finds
# them: basic blocks (a block starts at a label or after a branch), their
# edges (branch targets, and the fall-through unless the block ends in an
# unconditional branch or a return), dominators, and one natural loop per
# header (the blocks that reach a back edge u -> h, h dominating u,
# without passing h).  A loop is innermost when no other loop's header is
# in it, and a kernel loop when it holds a multiply-add (vfmadd, vfmla,
# fmla, vfma, fmadd, vmla, vmul, mulps, fmul, or the soft-float call
# __aeabi_fmul).  Every load or store with the stack pointer as its base
# in such a loop is a spill or a reload.  (Block placement interleaves
# loops in the text, so that a span from a label to a branch back to it
# may hold an outer loop's latch: loops are not spans.)
#
# Prints one line per kernel loop: FUNCTION LABEL INSTRUCTIONS STACK-REFS
# [the first offending line], then "loops N spills S"; `-v only=RE` keeps
# the functions whose name (after the model name and a dot) starts with a
# match of RE; `-v dump=DIR` writes each such loop's instructions, in
# address order, to DIR/FUNCTION.LABEL.s (the input of bench/mca.sh's
# llvm-mca runs).
function opcode(s) { sub(/^[ \t]+/, "", s); sub(/[ \t].*/, "", s); return s }
# the local label that instruction s branches to, or ""
function target(s, op,   t) {
  if (op !~ /^(b|j|cb|tb|le|wls)/ || op ~ /^(blx|bic|bics|bfi|bfc|bkpt)$/) return ""
  if (!match(s, /[ \t,](\.?L[A-Za-z0-9_$.]*)[ \t]*$/)) return ""
  t = substr(s, RSTART + 1); gsub(/[ \t,]/, "", t)
  return t
}
function ends_flow(s, op) { # no fall-through: unconditional branch, return, indirect jump
  if (op ~ /^(jmp|jmpq|b|b\.w|ret|retq|br|bx)$/) return 1
  if (op == "bl" && target(s, op) != "") return 1 # Thumb-1's far branch to a local label
  if (op ~ /^pop(\.w)?$/ && s ~ /pc/) return 1
  if (op ~ /^(ldm|ldmia)(\.w)?$/ && s ~ /pc/) return 1
  return 0
}
function intersect(a, b) {
  while (a != b) {
    while (rpo[a] > rpo[b]) a = idom[a]
    while (rpo[b] > rpo[a]) b = idom[b]
  }
  return a
}
function flush(   i, b, s, t, nb, changed, p, np, u, h, x, k, sp, fma, ninstr, first, f, top, nst, inner, lname) {
  if (n == 0 || !keep) { n = 0; delete labidx; delete labname; return }
  # blocks
  nb = 0
  for (i = 1; i <= n; i++) {
    if (i == 1 || (i in labname) || brk[i - 1]) { nb++; bstart[nb] = i }
    blk[i] = nb
    bend[nb] = i
  }
  # edges
  for (b = 1; b <= nb; b++) { nsucc[b] = 0; npred[b] = 0 }
  for (b = 1; b <= nb; b++) {
    i = bend[b]
    t = br[i]
    if (t != "" && (t in labidx) && labidx[t] <= n) succ[b, ++nsucc[b]] = blk[labidx[t]]
    if (!noflow[i] && b < nb) succ[b, ++nsucc[b]] = b + 1
    for (k = 1; k <= nsucc[b]; k++) { s = succ[b, k]; pred[s, ++npred[s]] = b }
  }
  # reverse postorder by an iterative depth-first search from block 1
  for (b = 1; b <= nb; b++) { seen[b] = 0; rpo[b] = 0 }
  top = 1; stk[1] = 1; pos[1] = 0; seen[1] = 1; np = 0
  while (top > 0) {
    b = stk[top]
    if (pos[top] < nsucc[b]) {
      s = succ[b, ++pos[top]]
      if (!seen[s]) { seen[s] = 1; stk[++top] = s; pos[top] = 0 }
    } else { order[++np] = b; top-- }
  }
  for (k = 1; k <= np; k++) { rpo[order[k]] = np - k + 1; byrpo[np - k + 1] = order[k] }
  # dominators (Cooper, Harvey and Kennedy)
  for (b = 1; b <= nb; b++) idom[b] = 0
  idom[1] = 1
  changed = 1
  while (changed) {
    changed = 0
    for (k = 2; k <= np; k++) {
      b = byrpo[k]; x = 0
      for (p = 1; p <= npred[b]; p++) {
        u = pred[b, p]
        if (!seen[u] || !idom[u]) continue
        x = x ? intersect(u, x) : u
      }
      if (x && idom[b] != x) { idom[b] = x; changed = 1 }
    }
  }
  # natural loops, one per header
  nh = 0
  for (u = 1; u <= nb; u++) {
    if (!seen[u]) continue
    for (k = 1; k <= nsucc[u]; k++) {
      h = succ[u, k]
      for (x = u; x != h && x != 1; x = idom[x]);
      if (x != h) continue # not a back edge
      if (!(h in ishead)) { ishead[h] = ++nh; head[nh] = h; inl[h, h] = 1 }
      if ((h, u) in inl) continue
      inl[h, u] = 1; nst = 1; wl[1] = u
      while (nst > 0) {
        x = wl[nst--]
        for (p = 1; p <= npred[x]; p++) {
          s = pred[x, p]
          if (seen[s] && !((h, s) in inl)) { inl[h, s] = 1; wl[++nst] = s }
        }
      }
    }
  }
  for (k = 1; k <= nh; k++) {
    h = head[k]; inner = 1
    for (x = 1; x <= nh; x++) if (x != k && (h, head[x]) in inl) inner = 0
    if (!inner) continue
    fma = 0; sp = 0; first = ""; ninstr = 0
    for (b = 1; b <= nb; b++) {
      if (!((h, b) in inl)) continue
      for (i = bstart[b]; i <= bend[b]; i++) {
        ninstr++
        if (line[i] ~ /(vfmadd|vfnmadd|vfmla|fmla|vfma|fmadd|vmla|vmul|mulps|fmul)[a-z0-9.]*[ \t]/ || line[i] ~ /__aeabi_fmul/) fma = 1
        if (line[i] ~ /\[sp[],]|\(%rsp\)|\(%esp\)/) { sp++; if (first == "") first = line[i] }
      }
    }
    if (!fma) continue
    loops++
    spills += sp
    lname = (bstart[h] in labname) ? labname[bstart[h]] : "entry"
    if (dump != "") {
      f = dump "/" fn "." lname ".s"
      for (b = 1; b <= nb; b++)
        if ((h, b) in inl) for (i = bstart[b]; i <= bend[b]; i++) print line[i] > f
      close(f)
    }
    gsub(/[ \t]+/, " ", first)
    printf "%s %s %d %d%s\n", fn, lname, ninstr, sp, first == "" ? "" : " |" first
  }
  n = 0
  delete labidx; delete labname; delete brk; delete br; delete noflow; delete line; delete blk
  delete succ; delete pred; delete ishead; delete inl; delete head
}
/^[A-Za-z_][A-Za-z0-9_.$]*:/ {
  name = $0; sub(/:.*/, "", name)
  flush()
  fn = name
  keep = only == "" || substr(fn, index(fn, ".") + 1) ~ ("^(" only ")")
  next
}
/^\.?L[A-Za-z0-9_$.]*:/ { l = $0; sub(/:.*/, "", l); labidx[l] = n + 1; labname[n + 1] = l; next }
/^[ \t]*[.@#;]/ { next }
/^[ \t]*$/ { next }
{
  if (!keep) next
  line[++n] = $0
  op = opcode($0)
  br[n] = target($0, op)
  noflow[n] = ends_flow($0, op)
  brk[n] = br[n] != "" || noflow[n]
}
END { flush(); printf "loops %d spills %d\n", loops, spills }
