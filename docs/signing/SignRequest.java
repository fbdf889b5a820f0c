// Sign a request to the gateway (RFC 9421, ed25519) with the JDK alone
// (17 or later): java SignRequest.java
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;
import java.util.UUID;

public class SignRequest {
    static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value != null ? value : fallback;
    }

    public static void main(String[] args) throws Exception {
        String baseUrl = env("OB_BASE_URL", "http://127.0.0.1:8080");
        String token = System.getenv("OB_TOKEN");
        String[] credential = token != null && !token.isEmpty()
            ? new String[] {"Authorization", "Bearer " + token}
            : new String[] {"X-API-Key", System.getenv("OB_API_KEY")};
        String kid = env("OB_KID", "demo-2026-11");
        String pem = Files.readString(Path.of(env("OB_KEY", "conf/demo/demo-ed25519.pem")));
        byte[] der = Base64.getMimeDecoder().decode(
            pem.replaceAll("-----[A-Z ]+-----", ""));
        var key = KeyFactory.getInstance("Ed25519")
            .generatePrivate(new PKCS8EncodedKeySpec(der));

        URI uri = URI.create(baseUrl + "/v1/payments");
        byte[] body = ("{\"debtor_account\": {\"number\": \"6222020000000001\"}, "
            + "\"creditor_account\": {\"number\": \"6222020000000201\", "
            + "\"name\": \"Shanghai Supplier Co., Ltd.\", \"bank_code\": \"OBKCNSH\"}, "
            + "\"amount\": {\"value\": \"12.50\", \"currency\": \"CNY\"}, "
            + "\"reference\": \"invoice 42\"}").getBytes(StandardCharsets.UTF_8);

        Base64.Encoder b64 = Base64.getEncoder();
        String digest = "sha-256=:" + b64.encodeToString(
            MessageDigest.getInstance("SHA-256").digest(body)) + ":";
        byte[] nonce = new byte[16];
        new SecureRandom().nextBytes(nonce);
        String targetUri = uri.getScheme() + "://" + uri.getRawAuthority().toLowerCase()
            + uri.getRawPath() + (uri.getRawQuery() != null ? "?" + uri.getRawQuery() : "");
        String params = "(\"@method\" \"@target-uri\" \"content-digest\")"
            + ";created=" + System.currentTimeMillis() / 1000
            + ";keyid=\"" + kid + "\""
            + ";nonce=\"" + Base64.getUrlEncoder().withoutPadding().encodeToString(nonce) + "\"";
        String signatureBase = "\"@method\": POST\n"
            + "\"@target-uri\": " + targetUri + "\n"
            + "\"content-digest\": " + digest + "\n"
            + "\"@signature-params\": " + params;

        Signature signer = Signature.getInstance("Ed25519");
        signer.initSign(key);
        signer.update(signatureBase.getBytes(StandardCharsets.UTF_8));
        String signature = b64.encodeToString(signer.sign());

        HttpRequest request = HttpRequest.newBuilder(uri)
            .header(credential[0], credential[1])
            // store the Idempotency-Key before sending: a retry sends it again
            .header("Idempotency-Key", UUID.randomUUID().toString())
            .header("Content-Type", "application/json")
            .header("Content-Digest", digest)
            .header("Signature-Input", "sig=" + params)
            .header("Signature", "sig=:" + signature + ":")
            .POST(HttpRequest.BodyPublishers.ofByteArray(body))
            .build();
        HttpResponse<String> response = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1).build()
            .send(request, HttpResponse.BodyHandlers.ofString());
        System.out.println(response.statusCode() + " " + response.body());
    }
}
