// An ES module in a .js file: "type": "module" in the nearest package.json.
export const handler = async () => ({ module: 'esm from .js', meta: typeof import.meta.url });
