/* embed_caption.c — a tiny program on libclipc: embeds two captions and prints their similarity.
 *
 *   cc $(pkg-config --cflags clipc) embed_caption.c $(pkg-config --libs clipc) -o embed_caption
 *   ./embed_caption MODEL_DIR "a photo of a dog" "a photo of a cat"
 */
#include <clipc.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR CAPTION [OTHER_CAPTION]\n", argv[0]);
        return 2;
    }
    clipc_model *model = clipc_open(argv[1], NULL);
    if (!model) {
        fprintf(stderr, "%s\n", clipc_last_error());
        return 1;
    }
    int dim = clipc_dim(model);
    float *a = malloc((size_t)dim * sizeof(float)), *b = malloc((size_t)dim * sizeof(float));
    if (clipc_embed_text(model, argv[2], a) != 0) {
        fprintf(stderr, "%s\n", clipc_last_error());
        return 1;
    }
    printf("%d-d embedding of \"%s\": [%.4f, %.4f, %.4f, ...]\n", dim, argv[2], a[0], a[1], a[2]);
    if (argc > 3 && clipc_embed_text(model, argv[3], b) == 0)
        printf("cosine similarity with \"%s\": %.4f\n", argv[3], clipc_similarity(model, a, b));
    free(a);
    free(b);
    clipc_close(model);
    return 0;
}
