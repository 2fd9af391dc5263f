module.exports.handler = async () => ({ module: '.cjs' });
