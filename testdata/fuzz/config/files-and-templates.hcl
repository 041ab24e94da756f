locals {
  t  = templatefile("t.tpl", { name = "x", items = [1, 2] })
  s  = templatestring("hello ${"$"}{name}", { name = "y" })
  f  = fileexists("t.tpl") ? file("t.tpl") : ""
  h  = [filemd5("t.tpl"), filesha256("t.tpl"), filebase64("t.tpl")]
  fs = fileset(path.module, "*.tpl")
  d  = jsondecode("[[[[1]]]]")
  y  = yamldecode("a: [1, {b: 2}]")
  p  = setproduct(range(3), ["a", "b"])
}

output "all" {
  value = [local.t, local.s, local.f, local.h, local.fs, local.d, local.y, local.p]
}
