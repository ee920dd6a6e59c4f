// Op codes of the addon's generic entry points (native/tensor_ops.cc: binary, unary, reduce).
// Keep in step with the C++ switch statements.

export const enum BinaryOp {
  Add = 0, Sub = 1, Mul = 2, Div = 3, Pow = 4, Maximum = 5, Minimum = 6,
  Eq = 7, Ne = 8, Lt = 9, Le = 10, Gt = 11, Ge = 12, LogicalAnd = 13, LogicalOr = 14,
  Remainder = 15, FloorDivide = 16, RSub = 17,
}

export const enum UnaryOp {
  Neg = 0, Exp = 1, Log = 2, Sqrt = 3, Rsqrt = 4, Abs = 5, Sin = 6, Cos = 7, Tanh = 8, Sigmoid = 9,
  Silu = 10, Gelu = 11, GeluTanh = 12, Relu = 13, Erf = 14, Erfinv = 15, Square = 16, Reciprocal = 17,
  IsFinite = 18, IsNan = 19, LogicalNot = 20, Sign = 21, Floor = 22, Ceil = 23, Round = 24,
  Log1p = 25, Expm1 = 26, IsInf = 27,
}

export const enum ReduceOp {
  Sum = 0, Mean = 1, Amax = 2, Amin = 3, All = 4, Any = 5, Var = 6, Std = 7, VarBiased = 8,
}
