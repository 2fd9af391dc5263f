// ES syntax in a .js file with no "type": "module": required as CommonJS, as Lambda does.
export const handler = async () => 'never';
