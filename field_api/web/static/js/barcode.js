/* Reading a meter barcode (Code 128 or QR, Q/GDW 1205) from a camera photo in the browser.
 * The native BarcodeDetector is used where the browser has it (Android Chrome); elsewhere the
 * vendored ZXing library. Photos are scaled down and tried at 0/90/180/270 degrees, because a
 * phone held sideways stores the picture rotated.
 */
(function () {
  "use strict";

  var MAX_SIDE = 1600;

  function loadImage(blob) {
    if (window.createImageBitmap) {
      return createImageBitmap(blob, { imageOrientation: "from-image" }).catch(function () {
        return createImageBitmap(blob);
      });
    }
    return new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () { resolve(img); };
      img.onerror = function () { reject(new Error("not an image")); };
      img.src = URL.createObjectURL(blob);
    });
  }

  function toCanvas(image, degrees) {
    var w = image.width, h = image.height;
    var scale = Math.min(1, MAX_SIDE / Math.max(w, h));
    var sw = Math.round(w * scale), sh = Math.round(h * scale);
    var canvas = document.createElement("canvas");
    var turned = degrees === 90 || degrees === 270;
    canvas.width = turned ? sh : sw;
    canvas.height = turned ? sw : sh;
    var ctx = canvas.getContext("2d");
    ctx.translate(canvas.width / 2, canvas.height / 2);
    ctx.rotate((degrees * Math.PI) / 180);
    ctx.drawImage(image, -sw / 2, -sh / 2, sw, sh);
    return canvas;
  }

  function nativeDetector() {
    if (!("BarcodeDetector" in window)) return Promise.resolve(null);
    return window.BarcodeDetector.getSupportedFormats().then(function (formats) {
      var wanted = ["code_128", "qr_code"].filter(function (f) { return formats.indexOf(f) >= 0; });
      return wanted.length ? new window.BarcodeDetector({ formats: wanted }) : null;
    }).catch(function () { return null; });
  }

  function zxingDecode(canvas) {
    var Z = window.ZXing;
    if (!Z) return null;
    var hints = new Map();
    hints.set(Z.DecodeHintType.POSSIBLE_FORMATS, [Z.BarcodeFormat.CODE_128, Z.BarcodeFormat.QR_CODE]);
    hints.set(Z.DecodeHintType.TRY_HARDER, true);
    var reader = new Z.MultiFormatReader();
    reader.setHints(hints);
    try {
      var bitmap = new Z.BinaryBitmap(new Z.HybridBinarizer(new Z.HTMLCanvasElementLuminanceSource(canvas)));
      return reader.decode(bitmap).getText();
    } catch (e) {
      return null; // NotFound / checksum / format errors all mean "nothing readable here"
    }
  }

  /** Decode a photo: resolves to {value, engine} or null when no barcode could be read. */
  function decode(blob) {
    return Promise.all([loadImage(blob), nativeDetector()]).then(function (parts) {
      var image = parts[0], detector = parts[1];
      var angles = [0, 90, 180, 270];
      var attempt = function (i) {
        if (i >= angles.length) return Promise.resolve(null);
        var canvas = toCanvas(image, angles[i]);
        var viaNative = detector
          ? detector.detect(canvas).then(function (codes) {
              return codes.length ? { value: codes[0].rawValue, engine: "BarcodeDetector" } : null;
            }).catch(function () { return null; })
          : Promise.resolve(null);
        return viaNative.then(function (found) {
          if (found) return found;
          var text = zxingDecode(canvas);
          return text ? { value: text, engine: "ZXing" } : attempt(i + 1);
        });
      };
      return attempt(0);
    });
  }

  window.FOBarcode = { decode: decode };
})();
