"""Checks for the lessons' exercises: each one tells a student whether an answer is right, and if not, why not.

A check takes the student's answer (a value, a function or a class) and whatever it needs to work out the right
answer itself, and returns a `Verdict`, shown in a notebook as one line:

    ✓ right: ...        ✗ wrong: a hint        … not answered yet

A check never raises on a wrong or missing answer, so a lesson runs top to bottom with its exercises open. An
answer is "not answered yet" while it is the placeholder: None, `...`, or a function that raises
NotImplementedError. Any other error in the student's code is reported as a wrong answer with the error.

One module per lesson, imported by its notebook as `from tinyface.teaching.exercises import lesson05_triplet_loss
as ex`; open verdict.py first, for the Verdict and the helpers every check reads answers with.

    verdict                     Verdict, and turning a function that raises on a wrong answer into a check
    lesson01_similarity         check_centred_distance, check_far_frr, check_identify
    lesson02_autograd           check_anchor_gradient, check_numerical_gradient, check_function
    lesson03_cnn                check_im2col, check_conv_parameter_count, check_max_pool
    lesson04_siamese            check_contrastive_gradient, check_balanced_pairs
    lesson05_triplet_loss       check_collapse_training, check_triplet_gradients
    lesson06_choosing_triplets  check_semihard_negatives, check_batch_hard, check_batch_hard_weights,
                                check_fraction_active
    lesson07_measuring          check_eer, check_kfold_accuracy, check_threshold_at_far,
                                check_pairwise_precision_recall
    lesson08_gpu_kernels        check_sqdist_backward, check_batch_hard_kernel
    lesson09_harmonic_embeddings  check_harmonic_loss, check_update_gain, check_mixed_distances
    lesson10_your_own_photos    check_false_alarm_rate, check_per_person_far, check_open_set_tau
    lesson11_face_alignment     check_similarity_transform, check_inverse_warp, check_affine_fit
    lesson12_softmax_vs_triplet check_center_update, check_cross_entropy_gradient, check_head_parameters
    lesson13_closing_the_gap    check_semihard_fraction, check_batch_counts, check_semihard_chance
"""
