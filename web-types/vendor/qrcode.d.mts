// /app/vendor/qrcode.mjs is qrcode-generator's ES module (bocage/local/gateway.py: VENDOR_FILES):
// its own declarations, seen from web/js through tsconfig's rootDirs.
import qrcode from 'qrcode-generator';

export default qrcode;
