// A 200-line TypeScript script of the kind load tests call: interfaces, type aliases, generics,
// annotated parameters and `export function`s. Measured by `run.sh`; a fixed input.
export interface Context {
  variables: Record<string, string>;
  extracted_data: Record<string, unknown>;
  vu_id: number;
  iteration: number;
}

type Params = { user?: string; count?: number; tags?: string[] };

interface Order<T extends string = string> {
  id: T;
  lines: Array<{ sku: string; qty: number; price: number }>;
  total?: number;
}

export function shape0(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 0;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-0`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape1(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 1;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-1`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape2(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 2;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-2`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape3(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 3;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-3`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape4(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 4;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-4`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape5(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 5;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-5`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape6(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 6;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-6`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape7(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 7;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-7`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape8(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 8;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-8`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape9(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 9;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-9`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape10(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 10;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-10`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape11(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 11;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-11`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape12(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 12;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-12`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape13(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 13;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-13`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}

export function shape14(params: Params & { __context?: Context }): Order {
  const ctx: Context | undefined = params.__context;
  const n: number = (params.count ?? 1) + 14;
  const lines = [] as Array<{ sku: string; qty: number; price: number }>;
  for (let k: number = 0; k < n; k++) {
    lines.push({ sku: `sku-${k}`, qty: k + 1, price: (k * 3) / 2 });
  }
  const order: Order<string> = { id: `${ctx?.vu_id ?? 0}-14`, lines };
  order.total = lines.reduce<number>((s, l) => s + l.qty * l.price, 0);
  return order;
}
export const limit196: number = 196;
export const limit197: number = 197;
export const limit198: number = 198;
export const limit199: number = 199;
