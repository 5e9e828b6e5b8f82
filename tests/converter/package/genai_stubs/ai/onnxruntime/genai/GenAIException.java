// API stub (signatures of onnxruntime-genai's Java API, src/java/src/main/java/ai/onnxruntime/genai, 0.16):
// lets the tests compile GenAiEngine.kt without the Android AAR. Bodies never run.
package ai.onnxruntime.genai;

public final class GenAIException extends Exception {
  public GenAIException(String message) { super(message); }
}
